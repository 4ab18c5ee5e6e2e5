"""Word n-gram estimation with interpolated modified Kneser-Ney smoothing (Chen & Goodman 1998).

Written by hand in Python/numpy: no library estimates ARPA language models offline in this stack
(SRILM / KenLM / MITLM are not installable here). The estimate follows Chen & Goodman, Sec. 3.5
(interpolated, three discounts per order) with KenLM's treatment of sentence starts:

* Each sentence is padded as ``<s> w1 .. wn </s>`` (one ``<s>``; histories are truncated at it).
* The highest order uses raw counts. A lower-order n-gram uses its *continuation count* (the number of
  distinct words seen to its left), except n-grams that begin with ``<s>``, which have no left
  context and keep their raw counts.
* Per order k, from the count-of-counts n1..n4 of the (adjusted) counts:
  ``Y = n1 / (n1 + 2 n2)``, ``D1 = 1 - 2Y n2/n1``, ``D2 = 2 - 3Y n3/n2``, ``D3+ = 3 - 4Y n4/n3``.
  When these are undefined or outside ``0 < Dc <= c`` (tiny corpora), one absolute discount ``Y``
  is used for all counts, or (0.5, 1.0, 1.5) if n1 or n2 is zero (logged as a warning).
* ``p(w|h) = max(c(hw) - D(c(hw)), 0) / c(h.) + gamma(h) p(w|h')`` with
  ``gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / c(h.)``; the unigram distribution is
  interpolated with the uniform distribution over the vocabulary.

Vocabulary: the training words (or a given word list, e.g. the lexicon's words, so that every word of
the lexicon gets probability mass) plus ``</s>`` and the unknown-word symbol; ``<s>`` is only a
history (its ARPA probability is -99). Training words outside a given word list become ``unk_word``
(default ``<UNK>``, the project's lexicon entry for spoken noise / unknown words; ARPA files from other
tools often call it ``<unk>``). Probabilities of every history sum to one over this vocabulary.

Because the model is interpolated, its ARPA form stores for each listed n-gram the fully interpolated
probability and, for each history, ``gamma(h)`` as the back-off weight.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable, Sequence

from asrdistill.errors import UserFacingError
from asrdistill.lm.arpa import BOS, EOS, ArpaLM
from asrdistill.utils import get_logger

log = get_logger(__name__)

Ngram = tuple[str, ...]
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


def count_ngrams(sentences: Iterable[Sequence[str]], order: int) -> list[Counter]:
    """Raw counts for order ``order`` plus the ``<s>``-initial n-grams of lower orders.

    Returns ``counts[k]`` (k = 1..order; index 0 unused) mapping n-gram tuples to counts.
    """
    counts: list[Counter] = [Counter() for _ in range(order + 1)]
    for words in sentences:
        toks = [BOS, *words, EOS]
        for i in range(1, len(toks)):
            start = i - order + 1
            if start <= 0:
                counts[i + 1][tuple(toks[:i + 1])] += 1
            else:
                counts[order][tuple(toks[start:i + 1])] += 1
    return counts


def adjust_counts(counts: list[Counter]) -> list[Counter]:
    """Kneser-Ney adjusted counts: continuation counts for lower orders, except ``<s>``-initial n-grams."""
    order = len(counts) - 1
    adjusted: list[Counter] = [Counter() for _ in range(order + 1)]
    adjusted[order] = Counter(counts[order])
    for k in range(order - 1, 0, -1):
        cur = Counter({g: c for g, c in counts[k].items() if g[0] == BOS})
        for g in adjusted[k + 1]:
            suffix = g[1:]
            if suffix[0] != BOS:
                cur[suffix] += 1
        adjusted[k] = cur
    return adjusted


def modified_kn_discounts(counts: Counter, order: int) -> tuple[float, float, float]:
    """(D1, D2, D3+) from the count-of-counts of ``counts`` (Chen & Goodman eq. 26).

    Small or odd corpora can make these undefined or leave ``0 < Dc <= c``; then the single
    absolute discount ``D = n1 / (n1 + 2 n2)`` (Ney et al.) is used for all three, or (0.5, 1.0, 1.5)
    if even that is undefined (logged as a warning)."""
    coc = Counter(c for c in counts.values() if c <= 4)
    n1, n2, n3, n4 = (coc.get(i, 0) for i in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) > 0:
        y = n1 / (n1 + 2 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        if all(0.0 < di <= i + 1 for i, di in enumerate(d)):
            return d
    if n1 > 0 and n2 > 0:
        y = n1 / (n1 + 2 * n2)
        log.warning("order %d: count-of-counts n1..n4 = %d %d %d %d do not give valid modified-KN discounts; "
                    "using one absolute discount D = %.3f", order, n1, n2, n3, n4, y)
        return (y, y, y)
    log.warning("order %d: count-of-counts n1..n4 = %d %d %d %d; using fallback discounts %s",
                order, n1, n2, n3, n4, FALLBACK_DISCOUNTS)
    return FALLBACK_DISCOUNTS


def estimate_kneser_ney(sentences: Iterable[Sequence[str]], order: int = 3,
                        vocabulary: Iterable[str] | None = None, unk_word: str = "<UNK>") -> ArpaLM:
    """Estimate an interpolated modified Kneser-Ney n-gram model; returns it in ARPA (back-off) form.

    ``sentences``: word sequences without ``<s>``/``</s>``. ``vocabulary``: if given, the LM's word list
    (training words outside it become ``unk_word``); else the training words. ``unk_word`` is always
    part of the vocabulary.
    """
    if order < 1:
        raise UserFacingError(f"n-gram order must be >= 1, got {order}")
    vocab_set = set(vocabulary) if vocabulary is not None else None
    reserved = {BOS, EOS}
    if vocab_set is not None:
        vocab_set -= reserved
    sents: list[list[str]] = []
    num_oov = 0
    for words in sentences:
        ws = list(words)
        if vocab_set is not None:
            mapped = [w if w in vocab_set else unk_word for w in ws]
            num_oov += sum(a != b for a, b in zip(ws, mapped))
            ws = mapped
        bad = [w for w in ws if w in reserved]
        if bad:
            raise UserFacingError(f"training sentence contains reserved symbol {bad[0]!r}: {' '.join(ws)}")
        sents.append(ws)
    if not sents:
        raise UserFacingError("no training sentences for the language model")
    if num_oov:
        log.info("%d training word tokens outside the vocabulary mapped to %s", num_oov, unk_word)
    train_words = {w for s in sents for w in s}
    vocab = sorted((vocab_set if vocab_set is not None else train_words) | {unk_word, EOS})

    raw = count_ngrams(sents, order)
    adj = adjust_counts(raw)
    discounts = [(0.0, 0.0, 0.0)] + [modified_kn_discounts(adj[k], k) for k in range(1, order + 1)]

    def disc(k: int, c: int) -> float:
        return 0.0 if c == 0 else discounts[k][min(c, 3) - 1]

    # Per history h (length k-1) at order k: total count and N1/N2/N3+ of its continuations.
    totals: list[dict[Ngram, float]] = [dict() for _ in range(order + 1)]
    gammas: list[dict[Ngram, float]] = [dict() for _ in range(order + 1)]
    for k in range(1, order + 1):
        tot: dict[Ngram, float] = defaultdict(float)
        nk: dict[Ngram, list[int]] = defaultdict(lambda: [0, 0, 0])
        for g, c in adj[k].items():
            tot[g[:-1]] += c
            nk[g[:-1]][min(c, 3) - 1] += 1
        for h, t in tot.items():
            d1, d2, d3 = discounts[k]
            n1, n2, n3 = nk[h]
            totals[k][h] = t
            gammas[k][h] = (d1 * n1 + d2 * n2 + d3 * n3) / t

    probs: list[dict[Ngram, float]] = [dict() for _ in range(order + 1)]
    # Unigrams: every vocabulary word, interpolated with the uniform distribution.
    t0 = totals[1].get((), 0.0)
    g0 = gammas[1].get((), 1.0)
    for w in vocab:
        c = adj[1].get((w,), 0)
        probs[1][(w,)] = (max(c - disc(1, c), 0.0) / t0 if t0 else 0.0) + g0 / len(vocab)
    for k in range(2, order + 1):
        for g, c in adj[k].items():
            h = g[:-1]
            lower = probs[k - 1].get(g[1:])
            if lower is None:  # cannot happen for KN counts; guards the invariant
                raise AssertionError(f"lower-order n-gram {g[1:]} missing")
            probs[k][g] = max(c - disc(k, c), 0.0) / totals[k][h] + gammas[k][h] * lower
    # ARPA back-off weight of n-gram h = gamma of history h at order len(h)+1.
    backoffs: list[dict[Ngram, float]] = [dict() for _ in range(order + 1)]
    for k in range(1, order):
        for h, g in gammas[k + 1].items():
            backoffs[k][h] = g
    # <s> is a history only.
    probs[1][(BOS,)] = 0.0
    lm = ArpaLM.from_probabilities(probs, backoffs)
    lm.info = {"order": order, "vocab_size": len(vocab), "sentences": len(sents),
               "tokens": sum(len(s) + 1 for s in sents), "oov_tokens_mapped": num_oov, "unk_word": unk_word,
               "discounts": {k: list(discounts[k]) for k in range(1, order + 1)},
               "ngrams": {k: len(probs[k]) for k in range(1, order + 1)}}
    log.info("KN %d-gram: vocab %d, n-grams %s, discounts %s", order, len(vocab),
             lm.info["ngrams"], {k: [round(x, 3) for x in v] for k, v in lm.info["discounts"].items()})
    return lm
