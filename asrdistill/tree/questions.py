"""Questions for tree building: phone sets from top-down phone clustering (as Kaldi's cluster-phones),
user-supplied extra questions (extra_questions.txt), and pdf-class questions.

Phone clustering: the phones of each root set are pooled into one Gaussian (stats of the chosen
pdf-classes, all contexts); starting from all sets, every cluster is split in two by 2-means on the
Gaussian likelihood criterion, recursively down to single sets. Every cluster of the hierarchy is one
question (a set of phones) usable on the left and right context keys (and the centre key, for roots that
hold several phones).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from asrdistill.tree.stats import TreeStats, gauss_objf

PDF_CLASS_KEY = -1


@dataclass
class Questions:
    """Question sets per event key: key 0/1/2 -> phone sets, key -1 -> pdf-class sets."""

    phone_questions: list[tuple[int, ...]] = field(default_factory=list)
    pdf_class_questions: list[tuple[int, ...]] = field(default_factory=list)

    def for_key(self, key: int) -> list[tuple[int, ...]]:
        return self.pdf_class_questions if key == PDF_CLASS_KEY else self.phone_questions

    def __repr__(self) -> str:
        return (f"Questions({len(self.phone_questions)} phone questions, "
                f"{len(self.pdf_class_questions)} pdf-class questions)")


def _dedupe(sets: Iterable[Iterable[int]]) -> list[tuple[int, ...]]:
    out, seen = [], set()
    for s in sets:
        t = tuple(sorted(set(int(v) for v in s)))
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _objf_gain_2means(counts, sums, sumsq, var_floor, rng, num_iters=10, num_tries=4) -> np.ndarray:
    """Split points (pooled Gaussians) into two clusters maximising the total likelihood; bool mask."""
    n = len(counts)
    best_mask, best_objf = None, -np.inf
    for t in range(num_tries):
        if t == 0:  # deterministic start: the two points whose merge loses the most likelihood
            own = gauss_objf(counts, sums, sumsq, var_floor)
            pair = gauss_objf(counts[:, None] + counts[None], sums[:, None] + sums[None],
                              sumsq[:, None] + sumsq[None], var_floor)
            loss = own[:, None] + own[None] - pair
            np.fill_diagonal(loss, -np.inf)
            i, j = np.unravel_index(np.argmax(loss), loss.shape)
            centres = [i, j]
        else:
            centres = list(rng.choice(n, 2, replace=False))
        mask = np.zeros(n, dtype=bool)
        mask[centres[0]] = True
        cstats = [(counts[c], sums[c], sumsq[c]) for c in centres]
        for _ in range(num_iters):
            # assign each point to the cluster where adding it costs least likelihood
            costs = []
            for cn, cs, css in cstats:
                both = gauss_objf(counts + cn, sums + cs, sumsq + css, var_floor)
                costs.append(gauss_objf(counts, sums, sumsq, var_floor) + gauss_objf(cn, cs, css, var_floor)
                             - both)
            new_mask = costs[0] < costs[1]
            if new_mask.all() or not new_mask.any():
                new_mask = mask
            if np.array_equal(new_mask, mask) and _ > 0:
                break
            mask = new_mask
            cstats = [(counts[m].sum(), sums[m].sum(0), sumsq[m].sum(0)) for m in (mask, ~mask)]
        objf = sum(float(gauss_objf(counts[m].sum(), sums[m].sum(0), sumsq[m].sum(0), var_floor))
                   for m in (mask, ~mask))
        if mask.any() and (~mask).any() and objf > best_objf:
            best_mask, best_objf = mask, objf
    if best_mask is None:  # degenerate (identical points): split in halves
        best_mask = np.arange(n) < n // 2
    return best_mask


def cluster_phone_sets(stats: TreeStats, phone_sets: Sequence[Sequence[int]],
                       pdf_classes: Sequence[int] | None = (1,), seed: int = 0) -> list[tuple[int, ...]]:
    """Top-down binary clustering of phone sets; returns every cluster of the hierarchy as a phone set.

    ``pdf_classes``: which pdf-classes' statistics describe a phone (Kaldi's --pdf-class-list, default
    the central state 1; a phone with no statistics for them falls back to all its pdf-classes). Sets with
    no statistics at all are only part of the top question (all phones).
    """
    keys, cnt, s, ss = stats.keys, stats.counts, stats.sums, stats.sumsq
    dim = stats.dim
    pooled = []
    for ps in phone_sets:
        in_set = np.isin(keys[:, 1], list(ps))
        sel = in_set & np.isin(keys[:, 3], list(pdf_classes)) if pdf_classes is not None else in_set
        if not sel.any():
            sel = in_set
        pooled.append((cnt[sel].sum(), s[sel].sum(0) if sel.any() else np.zeros(dim),
                       ss[sel].sum(0) if sel.any() else np.zeros(dim)))
    counts = np.array([p[0] for p in pooled])
    sums = np.array([p[1] for p in pooled]).reshape(-1, dim)
    sumsq = np.array([p[2] for p in pooled]).reshape(-1, dim)
    rng = np.random.default_rng(seed)
    questions = [sorted(set(p for ps in phone_sets for p in ps))]
    seen = np.flatnonzero(counts > 0)
    stack = [seen] if len(seen) > 1 else []
    if len(seen) == 1:
        questions.append(sorted(phone_sets[seen[0]]))
    while stack:
        idx = stack.pop()
        mask = _objf_gain_2means(counts[idx], sums[idx], sumsq[idx], stats.var_floor, rng)
        for part in (idx[mask], idx[~mask]):
            questions.append(sorted(p for i in part for p in phone_sets[i]))
            if len(part) > 1:
                stack.append(part)
    return _dedupe(questions)


def default_pdf_class_questions(max_num_pdf_classes: int) -> list[tuple[int, ...]]:
    """Questions on the pdf-class: every prefix {0..i} and every single class (so any state can split off)."""
    qs = [tuple(range(i + 1)) for i in range(max_num_pdf_classes - 1)]
    qs += [(i,) for i in range(max_num_pdf_classes)]
    return _dedupe(qs)


def parse_extra_questions(text: str, phone_ids: dict[str, int] | None = None,
                          origin: str = "extra_questions.txt") -> list[tuple[int, ...]]:
    """Lines of phone names (or integer ids if ``phone_ids`` is None), one question per line."""
    from asrdistill.errors import UserFacingError

    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        names = line.split()
        if not names:
            continue
        try:
            out.append(tuple(int(n) if phone_ids is None else phone_ids[n] for n in names))
        except (KeyError, ValueError) as e:
            raise UserFacingError(f"{origin}:{lineno}: unknown phone {e}") from e
    return out


def make_questions(stats: TreeStats, phone_sets_for_roots: Sequence[Sequence[int]],
                   extra_questions: Sequence[Sequence[int]] | None = None,
                   num_pdf_classes: Mapping[int, int] | None = None, pdf_classes: Sequence[int] | None = (1,),
                   boundary_question: bool = True, seed: int = 0) -> Questions:
    """Build all questions: clustered phone sets + extra questions (+ {0}, the utterance boundary) and
    pdf-class questions up to the largest number of pdf-classes of any phone (``num_pdf_classes``:
    phone -> number of pdf-classes of its HMM; default: the largest pdf-class in the stats + 1)."""
    max_num_pdf_classes = max(num_pdf_classes.values()) if num_pdf_classes else None
    phone_qs = cluster_phone_sets(stats, phone_sets_for_roots, pdf_classes=pdf_classes, seed=seed)
    phone_qs += [tuple(q) for q in (extra_questions or [])]
    if boundary_question:
        phone_qs.append((0,))
    if max_num_pdf_classes is None:
        keys = stats.keys
        max_num_pdf_classes = int(keys[:, 3].max()) + 1 if len(keys) else 1
    return Questions(_dedupe(phone_qs), default_pdf_class_questions(max_num_pdf_classes))
