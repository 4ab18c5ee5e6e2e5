"""The decision tree as Kaldi EventMaps, and ``Tree`` (a ContextDependency with N=3, P=1).

An event is a set of (key, value): key 0 = left phone, 1 = centre phone, 2 = right phone,
key -1 (kPdfClass) = pdf-class. Nodes mirror Kaldi's: ConstantEventMap (CE, a leaf giving a pdf-id),
SplitEventMap (SE: a key, a set of yes-values, a yes-map and a no-map) and TableEventMap (TE: a key and
one sub-map per value, ``None`` for values that have no answer).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence, Union

import numpy as np

PDF_CLASS_KEY = -1
CONTEXT_WIDTH = 3
CENTRAL_POSITION = 1


@dataclass
class ConstantEventMap:
    answer: int


@dataclass
class SplitEventMap:
    key: int
    yes_set: tuple[int, ...]  # sorted, unique
    yes: "EventMap"
    no: "EventMap"


@dataclass
class TableEventMap:
    key: int
    table: list["EventMap | None"] = field(default_factory=list)


EventMap = Union[ConstantEventMap, SplitEventMap, TableEventMap]

_COLUMN = {0: 0, 1: 1, 2: 2, PDF_CLASS_KEY: 3}  # event key -> column of a [n, 4] context array


def map_event(node: EventMap | None, event: Sequence[int]) -> int | None:
    """Answer of ``node`` for ``event`` = (left, centre, right, pdf-class), or None (no answer)."""
    while node is not None:
        if isinstance(node, ConstantEventMap):
            return node.answer
        value = event[_COLUMN[node.key]]
        if isinstance(node, SplitEventMap):
            node = node.yes if value in node.yes_set else node.no
        else:
            node = node.table[value] if 0 <= value < len(node.table) else None
    return None


def map_events(node: EventMap | None, events: np.ndarray) -> np.ndarray:
    """Vectorised :func:`map_event` for int [n, 4] events; -1 where there is no answer."""
    events = np.asarray(events)
    out = np.full(len(events), -1, dtype=np.int64)
    stack: list[tuple[EventMap | None, np.ndarray]] = [(node, np.arange(len(events)))]
    while stack:
        node, idx = stack.pop()
        if node is None or len(idx) == 0:
            continue
        if isinstance(node, ConstantEventMap):
            out[idx] = node.answer
            continue
        values = events[idx, _COLUMN[node.key]]
        if isinstance(node, SplitEventMap):
            yes = np.isin(values, node.yes_set)
            stack.append((node.yes, idx[yes]))
            stack.append((node.no, idx[~yes]))
        else:
            inside = (values >= 0) & (values < len(node.table))
            idx, values = idx[inside], values[inside]
            if len(values) == 0:
                continue
            order = np.argsort(values, kind="stable")
            idx, values = idx[order], values[order]
            bounds = np.flatnonzero(np.r_[True, values[1:] != values[:-1], True])
            for a, b in zip(bounds[:-1], bounds[1:]):
                stack.append((node.table[values[a]], idx[a:b]))
    return out


def iter_nodes(node: EventMap | None) -> Iterator[EventMap]:
    stack = [node]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        yield n
        if isinstance(n, SplitEventMap):
            stack.extend((n.no, n.yes))
        elif isinstance(n, TableEventMap):
            stack.extend(reversed(n.table))


class Tree:
    """A triphone context-dependency tree: ``compute(left, centre, right, pdf_class) -> pdf_id``."""

    def __init__(self, root: EventMap, context_width: int = CONTEXT_WIDTH,
                 central_position: int = CENTRAL_POSITION):
        if (context_width, central_position) not in ((3, 1), (1, 0)):
            raise ValueError(f"only N=3,P=1 (triphone) and N=1,P=0 (monophone) trees are supported, "
                             f"got N={context_width} P={central_position}")
        self.root = root
        self.context_width = context_width
        self.central_position = central_position

    @property
    def num_pdfs(self) -> int:
        """1 + the largest pdf-id (as Kaldi's ContextDependency::NumPdfs)."""
        answers = [n.answer for n in iter_nodes(self.root) if isinstance(n, ConstantEventMap)]
        return max(answers) + 1 if answers else 0

    def _to_events(self, left, centre, right, pdf_class) -> np.ndarray:
        cols = [np.atleast_1d(np.asarray(a, dtype=np.int64)) for a in (left, centre, right, pdf_class)]
        events = np.stack(np.broadcast_arrays(*cols), axis=1)
        if self.context_width == 1:  # a monophone tree only looks at key 0 = the phone
            events = events.copy()
            events[:, 0] = events[:, 1]
        return events

    def compute(self, left: int, centre: int, right: int, pdf_class: int) -> int:
        """pdf-id of one context; raises KeyError if the tree has no answer for it."""
        ans = int(self.compute_array(left, centre, right, pdf_class)[0])
        if ans < 0:
            raise KeyError(f"tree has no pdf for left={left} centre={centre} right={right} "
                           f"pdf-class={pdf_class}")
        return ans

    def compute_array(self, left, centre, right, pdf_class) -> np.ndarray:
        """Vectorised compute over broadcast arrays; -1 where the tree has no answer."""
        return map_events(self.root, self._to_events(left, centre, right, pdf_class))

    def pdf_stats(self, stats, min_var: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pool tree statistics per pdf: (counts [P], means [P, D], vars [P, D]) for GMM initialisation.

        pdfs that no statistics reach get count 0 and the global mean and variance. Variances are floored
        at ``min_var`` (default: the statistics' var_floor).
        """
        floor = stats.var_floor if min_var is None else min_var
        keys = stats.keys
        pdfs = self.compute_array(keys[:, 0], keys[:, 1], keys[:, 2], keys[:, 3])
        if np.any(pdfs < 0):
            bad = keys[np.flatnonzero(pdfs < 0)[0]]
            raise ValueError(f"tree has no pdf for seen context {tuple(int(v) for v in bad)}")
        num_pdfs = self.num_pdfs
        counts, sums, sumsq = stats.pooled(pdfs, num_pdfs)
        total = max(counts.sum(), 1e-10)
        gmean = sums.sum(0) / total
        gvar = np.maximum(sumsq.sum(0) / total - gmean ** 2, floor)
        seen = counts > 0
        safe = np.where(seen, counts, 1.0)[:, None]
        means = np.where(seen[:, None], sums / safe, gmean)
        variances = np.where(seen[:, None], np.maximum(sumsq / safe - (sums / safe) ** 2, floor), gvar)
        return counts, means, variances

    def __repr__(self) -> str:
        return f"Tree(N={self.context_width}, P={self.central_position}, num_pdfs={self.num_pdfs})"
