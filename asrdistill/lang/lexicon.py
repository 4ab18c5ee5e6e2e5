"""Reading and validating a Kaldi dict dir (``data/local/dict``).

Files (as in Kaldi's ``utils/prepare_lang.sh``):
  lexicon.txt            ``WORD PH1 PH2 ...`` per line (or lexiconp.txt ``WORD PROB PH1 ...``, used if present)
  silence_phones.txt     one phone set per line (phones on one line share a tree root)
  nonsilence_phones.txt  one phone set per line
  optional_silence.txt   one phone, a silence phone, inserted optionally between words
  extra_questions.txt    optional; one question (phone set) per line, may be empty

:func:`write_dict_dir` writes one (atomically, validated before it appears).

Every error names the file and the line (:class:`asrdistill.errors.DataDirError`). Files are read as UTF-8
under :mod:`asrdistill.textio`'s policy: a byte-order mark at the start is stripped (so a first line
``<UNK> SPN`` written by a Windows editor still defines ``<UNK>``), one elsewhere or a non-UTF-8 byte is an
error naming the line.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from asrdistill.errors import DataDirError
from asrdistill.textio import read_lines
from asrdistill.utils import atomic_path

RESERVED_WORDS = ("<eps>", "#0", "<s>", "</s>")
UNK = "<UNK>"
DICT_FILES = ("lexicon.txt", "lexiconp.txt", "silence_phones.txt", "nonsilence_phones.txt", "optional_silence.txt",
              "extra_questions.txt")


@dataclass
class DictDir:
    """A validated dict dir.

    ``lexicon`` holds (word, probability, phones) in file order; ``silence_sets`` / ``nonsilence_sets`` are
    the phone sets of the two phone lists (one per line).
    """

    path: Path
    lexicon: list[tuple[str, float, tuple[str, ...]]]
    silence_sets: list[list[str]]
    nonsilence_sets: list[list[str]]
    optional_silence: str
    extra_questions: list[list[str]] = field(default_factory=list)

    @property
    def silence_phones(self) -> list[str]:
        return [p for s in self.silence_sets for p in s]

    @property
    def nonsilence_phones(self) -> list[str]:
        return [p for s in self.nonsilence_sets for p in s]

    @property
    def words(self) -> list[str]:
        """Distinct lexicon words, sorted (C locale)."""
        return sorted({w for w, _, _ in self.lexicon}, key=lambda s: s.encode())


def _check_phone_name(path: Path, lineno: int, phone: str) -> None:
    if phone.startswith("#") or phone == "<eps>":
        raise DataDirError(str(path), lineno, f"{phone!r} is not allowed as a phone name "
                                              "(#... and <eps> are reserved)")


def _read_phone_sets(path: Path, required: bool = True) -> list[list[str]]:
    if not path.is_file():
        if required:
            raise DataDirError(str(path), None, "missing (required in a dict dir)")
        return []
    sets = []
    for lineno, line in enumerate(read_lines(path), 1):
        phones = line.split()
        if not phones:
            continue
        for p in phones:
            _check_phone_name(path, lineno, p)
        sets.append(phones)
    return sets


def read_dict_dir(dict_dir: str | os.PathLike) -> DictDir:
    """Read and validate a Kaldi dict dir; raises DataDirError naming file:line on any problem."""
    d = Path(dict_dir)
    if not d.is_dir():
        raise DataDirError(str(d), None, "dict dir does not exist")
    silence_sets = _read_phone_sets(d / "silence_phones.txt")
    nonsilence_sets = _read_phone_sets(d / "nonsilence_phones.txt")
    if not silence_sets:
        raise DataDirError(str(d / "silence_phones.txt"), None, "no silence phones (need at least one, e.g. SIL)")
    if not nonsilence_sets:
        raise DataDirError(str(d / "nonsilence_phones.txt"), None, "no nonsilence phones")
    seen: dict[str, str] = {}
    for fname, sets in (("silence_phones.txt", silence_sets), ("nonsilence_phones.txt", nonsilence_sets)):
        for s in sets:
            for p in s:
                if p in seen:
                    raise DataDirError(str(d / fname), None, f"phone {p} listed twice "
                                                             f"(also in {seen[p]})")
                seen[p] = fname
    opt_path = d / "optional_silence.txt"
    opt = _read_phone_sets(opt_path)
    if len(opt) != 1 or len(opt[0]) != 1:
        raise DataDirError(str(opt_path), 1, "must contain exactly one phone")
    optional_silence = opt[0][0]
    if seen.get(optional_silence) != "silence_phones.txt":
        raise DataDirError(str(opt_path), 1, f"optional silence {optional_silence} is not in silence_phones.txt")
    extra = _read_phone_sets(d / "extra_questions.txt", required=False)
    for lineno, q in enumerate(extra, 1):
        for p in q:
            if p not in seen:
                raise DataDirError(str(d / "extra_questions.txt"), lineno, f"unknown phone {p}")

    lexp = d / "lexiconp.txt"
    with_prob = lexp.is_file()
    lex_path = lexp if with_prob else d / "lexicon.txt"
    if not lex_path.is_file():
        raise DataDirError(str(lex_path), None, "missing (required in a dict dir)")
    lexicon: list[tuple[str, float, tuple[str, ...]]] = []
    entries: dict[tuple[str, tuple[str, ...]], int] = {}
    for lineno, line in enumerate(read_lines(lex_path), 1):
        fields = line.split()
        if not fields:
            continue
        word, rest = fields[0], fields[1:]
        if word in RESERVED_WORDS or word.startswith("#"):
            raise DataDirError(str(lex_path), lineno, f"word {word!r} is reserved (<eps>, #..., <s>, </s>)")
        prob = 1.0
        if with_prob:
            try:
                prob = float(rest[0])
            except (IndexError, ValueError):
                raise DataDirError(str(lex_path), lineno, f"word {word}: second field must be a probability")
            if not 0.0 < prob <= 1.0:
                raise DataDirError(str(lex_path), lineno, f"word {word}: probability {prob} not in (0, 1]")
            rest = rest[1:]
        if not rest:
            raise DataDirError(str(lex_path), lineno, f"word {word} has an empty pronunciation")
        for p in rest:
            if p not in seen:
                raise DataDirError(str(lex_path), lineno, f"word {word}: unknown phone {p} (not in "
                                                          "silence_phones.txt or nonsilence_phones.txt)")
        key = (word, tuple(rest))
        if key in entries:
            raise DataDirError(str(lex_path), lineno, f"duplicate entry {word} {' '.join(rest)} "
                                                      f"(first at line {entries[key]})")
        entries[key] = lineno
        lexicon.append((word, prob, tuple(rest)))
    if not lexicon:
        raise DataDirError(str(lex_path), None, "lexicon is empty")
    return DictDir(d, lexicon, silence_sets, nonsilence_sets, optional_silence, extra)


def check_transcripts(dict_dir: DictDir, text: dict[str, str], text_path: str) -> dict[str, int]:
    """Count out-of-vocabulary words of a data dir's ``text``.

    With ``<UNK>`` in the lexicon, OOVs are allowed (they will map to it) and their counts are returned.
    Without it, the first OOV raises an error naming the file, line and utterance.
    """
    vocab = {w for w, _, _ in dict_dir.lexicon}
    has_unk = UNK in vocab
    oov: dict[str, int] = {}
    for lineno, utt in enumerate(sorted(text, key=lambda s: s.encode()), start=1):
        for w in text[utt].split():
            if w not in vocab:
                if not has_unk:
                    raise DataDirError(text_path, lineno,
                                       f"word {w!r} is not in the lexicon {dict_dir.path / 'lexicon.txt'} "
                                       f"and the lexicon has no {UNK} entry to map it to", utt)
                oov[w] = oov.get(w, 0) + 1
    return oov


def copy_dict_dir(src: DictDir, dest: str | os.PathLike) -> Path:
    """Copy the files of a validated dict dir to ``dest``."""
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        for name in DICT_FILES:
            if (src.path / name).is_file():
                shutil.copyfile(src.path / name, tmp / name)
    return dest


def write_dict_dir(dest: str | os.PathLike, lexicon: Iterable[tuple[str, Sequence[str]]],
                   silence_sets: Sequence[Sequence[str]], nonsilence_sets: Sequence[Sequence[str]],
                   optional_silence: str, extra_questions: Sequence[Sequence[str]] = (),
                   extra_files: Mapping[str, str] | None = None) -> DictDir:
    """Write a Kaldi dict dir atomically and return it as read back by :func:`read_dict_dir`.

    ``lexicon`` is (word, phones) in the order to write (duplicates are dropped); ``extra_files`` maps other
    file names (e.g. a report) to their text. The dir is validated before it replaces ``dest``, so an invalid
    dict dir is never left behind.
    """
    def lines(sets: Iterable[Sequence[str]]) -> str:
        return "".join(" ".join(s) + "\n" for s in sets)

    seen: set[tuple[str, tuple[str, ...]]] = set()
    entries = []
    for word, phones in lexicon:
        key = (word, tuple(phones))
        if key not in seen:
            seen.add(key)
            entries.append(f"{word} {' '.join(phones)}\n")
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        (tmp / "lexicon.txt").write_text("".join(entries))
        (tmp / "silence_phones.txt").write_text(lines(silence_sets))
        (tmp / "nonsilence_phones.txt").write_text(lines(nonsilence_sets))
        (tmp / "optional_silence.txt").write_text(optional_silence + "\n")
        (tmp / "extra_questions.txt").write_text(lines(extra_questions))
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        read_dict_dir(tmp)
    return read_dict_dir(dest)
