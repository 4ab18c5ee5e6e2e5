"""ARPA back-off n-gram language models: reading, writing, scoring, perplexity and a normalisation check.

An :class:`ArpaLM` holds, per order, ``log10 p`` and ``log10 back-off`` of each listed n-gram, as in
the ARPA file. ``p(w | h)`` is the listed probability of ``h w`` if present, else
``bow(h) * p(w | h[1:])`` (Katz back-off form, which interpolated models also use).
Sentences are scored as ``<s> w1 .. wn </s>``: ``</s>`` is predicted, ``<s>`` is not.
Words not in the model become its unknown word (``<UNK>`` or ``<unk>``) if it has one, else they are
skipped and counted as OOV (as SRILM's ``-ppl`` does).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from asrdistill.errors import UserFacingError
from asrdistill.utils import atomic_path

BOS, EOS = "<s>", "</s>"
UNK_CANDIDATES = ("<UNK>", "<unk>")
NO_PROB = -99.0
Ngram = tuple[str, ...]


@dataclass
class Perplexity:
    """Result of :meth:`ArpaLM.perplexity` (``logprob`` in log10, as SRILM prints)."""

    sentences: int
    words: int           # scored words, </s> included, OOVs excluded
    oovs: int
    logprob: float
    perplexity: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ArpaLM:
    logprobs: list[dict[Ngram, float]]          # index k = order k (0 unused): log10 p
    backoffs: list[dict[Ngram, float]]          # log10 back-off weight (missing: 0.0)
    info: dict = field(default_factory=dict)

    @property
    def order(self) -> int:
        return len(self.logprobs) - 1

    @property
    def vocabulary(self) -> list[str]:
        """Words that can be predicted (unigrams other than ``<s>``)."""
        return sorted(g[0] for g in self.logprobs[1] if g[0] != BOS)

    @property
    def unk_word(self) -> str | None:
        for w in UNK_CANDIDATES:
            if (w,) in self.logprobs[1]:
                return w
        return None

    @classmethod
    def from_probabilities(cls, probs: list[dict[Ngram, float]], backoffs: list[dict[Ngram, float]]) -> "ArpaLM":
        """Build from linear-domain probabilities and back-off weights (a zero probability is -99)."""
        lp = [{g: (math.log10(p) if p > 0 else NO_PROB) for g, p in d.items()} for d in probs]
        lb = [{g: (math.log10(b) if b > 0 else NO_PROB) for g, b in d.items() if b != 1.0} for d in backoffs]
        lb += [dict() for _ in range(len(lp) - len(lb))]
        return cls(lp, lb)

    # --- scoring -------------------------------------------------------------------------------
    def logprob(self, word: str, history: Sequence[str]) -> float:
        """log10 p(word | history) by back-off; ``history`` is truncated to order-1 words."""
        hist = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        bow = 0.0
        while True:
            g = hist + (word,)
            lp = self.logprobs[len(g)].get(g)
            if lp is not None:
                return bow + lp
            if not hist:
                return NO_PROB
            bow += self.backoffs[len(hist)].get(hist, 0.0)
            hist = hist[1:]

    def sentence_logprob(self, words: Sequence[str]) -> tuple[float, int, int]:
        """(log10 probability, scored words incl. </s>, OOVs) of one sentence."""
        unk = self.unk_word
        hist: list[str] = [BOS]
        total, n, oov = 0.0, 0, 0
        for w in [*words, EOS]:
            if (w,) not in self.logprobs[1] or w == BOS:
                if unk is None:
                    oov += 1
                    hist = []  # the OOV breaks the context (as SRILM does)
                    continue
                w = unk
            total += self.logprob(w, hist)
            n += 1
            hist.append(w)
        return total, n, oov

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> Perplexity:
        """Perplexity ``10 ** (-logprob / words)`` over sentences (``</s>`` counted as a word)."""
        tot, n, oov, s = 0.0, 0, 0, 0
        for words in sentences:
            lp, k, o = self.sentence_logprob(words)
            tot, n, oov, s = tot + lp, n + k, oov + o, s + 1
        ppl = 10 ** (-tot / n) if n else float("inf")
        return Perplexity(s, n, oov, tot, ppl)

    def check_normalization(self, tol: float = 1e-6, max_histories: int | None = None) -> float:
        """Largest |sum_w p(w | h) - 1| over the empty history and every listed history (n-grams that
        have a back-off weight or are prefixes of a longer n-gram); raises AssertionError above ``tol``."""
        vocab = self.vocabulary
        histories: set[Ngram] = {()}
        for k in range(1, self.order):
            histories.update(self.backoffs[k])
            histories.update(g[:-1] for g in self.logprobs[k + 1])
        worst = 0.0
        for i, h in enumerate(sorted(histories, key=lambda x: (len(x), x))):
            if max_histories is not None and i >= max_histories:
                break
            s = sum(10 ** self.logprob(w, h) for w in vocab)
            worst = max(worst, abs(s - 1.0))
            if abs(s - 1.0) > tol:
                raise AssertionError(f"history {' '.join(h) or '(empty)'}: probabilities sum to {s:.8f}")
        return worst

    # --- I/O -----------------------------------------------------------------------------------
    def write(self, path: str | os.PathLike) -> None:
        """Write as an ARPA file (atomically)."""
        with atomic_path(path) as tmp, open(tmp, "w") as f:
            f.write("\\data\\\n")
            for k in range(1, self.order + 1):
                f.write(f"ngram {k}={len(self.logprobs[k])}\n")
            for k in range(1, self.order + 1):
                f.write(f"\n\\{k}-grams:\n")
                for g in sorted(self.logprobs[k]):
                    line = f"{self.logprobs[k][g]:.7f}\t{' '.join(g)}"
                    if k < self.order:
                        line += f"\t{self.backoffs[k].get(g, 0.0):.7f}"
                    f.write(line + "\n")
            f.write("\n\\end\\\n")

    @classmethod
    def read(cls, path: str | os.PathLike) -> "ArpaLM":
        """Read an ARPA file; errors name the file and line."""
        path = Path(path)
        logprobs: list[dict[Ngram, float]] = [dict()]
        backoffs: list[dict[Ngram, float]] = [dict()]
        declared: dict[int, int] = {}
        section = None  # "data" or order k
        try:
            fh = open(path, encoding="utf-8")
        except OSError as err:
            raise UserFacingError(f"{path}: cannot read ARPA file: {err}") from err
        with fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                if line == "\\data\\":
                    section = "data"
                    continue
                if line == "\\end\\":
                    break
                if line.startswith("\\") and line.endswith("-grams:"):
                    try:
                        section = int(line[1:-len("-grams:")])
                    except ValueError:
                        raise UserFacingError(f"{path}:{lineno}: bad section header {line!r}") from None
                    while len(logprobs) <= section:
                        logprobs.append(dict())
                        backoffs.append(dict())
                    continue
                if section == "data":
                    if line.startswith("ngram "):
                        k, _, n = line[6:].partition("=")
                        declared[int(k)] = int(n)
                    continue
                if not isinstance(section, int):
                    continue  # text before \data\ is allowed
                parts = line.split()
                k = section
                if len(parts) not in (k + 1, k + 2):
                    raise UserFacingError(f"{path}:{lineno}: expected {k + 1} or {k + 2} fields in a "
                                          f"{k}-gram line, got {len(parts)}")
                try:
                    lp = float(parts[0])
                    bo = float(parts[k + 1]) if len(parts) == k + 2 else None
                except ValueError:
                    raise UserFacingError(f"{path}:{lineno}: bad number in {line!r}") from None
                g = tuple(parts[1:k + 1])
                logprobs[k][g] = lp
                if bo is not None and bo != 0.0:
                    backoffs[k][g] = bo
        if len(logprobs) < 2 or not logprobs[1]:
            raise UserFacingError(f"{path}: no unigrams (not an ARPA file?)")
        for k, n in declared.items():
            if k < len(logprobs) and len(logprobs[k]) != n:
                raise UserFacingError(f"{path}: header says ngram {k}={n} but {len(logprobs[k])} are listed")
        return cls(logprobs, backoffs)


def read_sentences(text_file: str | os.PathLike, has_utt_ids: bool = True) -> list[list[str]]:
    """Word sequences of a Kaldi ``text`` file (first field the utterance id) or of plain text lines."""
    out = []
    for line in Path(text_file).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if has_utt_ids:
            parts = parts[1:]
        out.append(parts)
    return out
