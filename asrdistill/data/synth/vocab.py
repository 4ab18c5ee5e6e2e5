"""The vocabulary of the synthetic corpus: word classes read from ``resources/synth_words.txt``.

The file groups lowercase words into classes (names, places, nouns with plurals, verbs with
past tenses, adjectives, ...) that the sentence grammar (:mod:`.grammar`) draws from. A class
header ``[name]`` starts a class; ``[name] pairs`` classes hold ``singular plural`` or
``base past`` pairs, one per line. :func:`filter_single_words` keeps only words that espeak-ng
phonemises as exactly one word (it expands roman numerals, abbreviations, ...).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Callable


@dataclass
class Vocabulary:
    """Word classes: ``words[cls]`` (plain classes) and ``pairs[cls]`` (pair classes)."""

    words: dict[str, list[str]] = field(default_factory=dict)
    pairs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def all_words(self) -> set[str]:
        out = {w for ws in self.words.values() for w in ws}
        out.update(w for ps in self.pairs.values() for p in ps for w in p)
        return out

    def restrict(self, keep: Callable[[str], bool]) -> "Vocabulary":
        """A copy holding only words for which ``keep`` is true (a pair needs both words)."""
        return Vocabulary(
            words={c: [w for w in ws if keep(w)] for c, ws in self.words.items()},
            pairs={c: [p for p in ps if keep(p[0]) and keep(p[1])] for c, ps in self.pairs.items()},
        )


def parse_word_classes(text: str, source: str = "synth_words.txt") -> Vocabulary:
    vocab = Vocabulary()
    cls: str | None = None
    is_pairs = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            head, _, kind = line.partition("]")
            cls, is_pairs = head[1:].strip(), kind.strip() == "pairs"
            if is_pairs:
                vocab.pairs.setdefault(cls, [])
            else:
                vocab.words.setdefault(cls, [])
            continue
        if cls is None:
            raise ValueError(f"{source}:{lineno}: word before the first [class] header")
        tokens = line.lower().split()
        if is_pairs:
            if len(tokens) != 2:
                raise ValueError(f"{source}:{lineno}: pair class [{cls}] needs two words, got {line!r}")
            if tuple(tokens) not in vocab.pairs[cls]:
                vocab.pairs[cls].append((tokens[0], tokens[1]))
        else:
            for t in tokens:
                if t not in vocab.words[cls]:
                    vocab.words[cls].append(t)
    return vocab


def load_word_classes() -> Vocabulary:
    """The word classes shipped with the package."""
    text = resources.files("asrdistill.resources").joinpath("synth_words.txt").read_text()
    return parse_word_classes(text)
