"""Kaldi dict dirs (``data/local/dict``): the lexicon and the phone lists, read and validated.

Files, as in Kaldi's ``utils/prepare_lang.sh``:

- ``lexicon.txt``: ``WORD PH1 PH2 ...`` (``lexiconp.txt`` with a probability after the word is also accepted);
- ``silence_phones.txt`` / ``nonsilence_phones.txt``: one phone per line (Kaldi allows several phones per line,
  sharing a tree root; they are read as separate phones, the line kept as a root group);
- ``optional_silence.txt``: the one phone inserted optionally between words;
- ``extra_questions.txt`` (optional): extra phone sets for the decision tree.

Errors name the file and the line.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from asrdistill.errors import DataDirError

UNK = "<UNK>"
RESERVED_WORDS = ("<eps>", "<s>", "</s>", "#0")


@dataclass
class DictDir:
    path: Path
    lexicon: list[tuple[str, list[str]]]       # (word, phones), in file order; a word may have several entries
    silence_phones: list[str]
    nonsilence_phones: list[str]
    optional_silence: str
    extra_questions: list[list[str]] = field(default_factory=list)
    root_groups: list[list[str]] = field(default_factory=list)  # phones sharing a tree root, as listed

    @property
    def phones(self) -> list[str]:
        return self.silence_phones + self.nonsilence_phones

    @property
    def words(self) -> list[str]:
        return sorted({w for w, _ in self.lexicon})

    def prons(self) -> dict[str, list[list[str]]]:
        out: dict[str, list[list[str]]] = {}
        for w, p in self.lexicon:
            out.setdefault(w, []).append(p)
        return out


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataDirError(str(path), None, f"not valid UTF-8 ({err.reason} at byte {err.start})") from None
    return [(i, line.split()) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def read_dict_dir(path: str | os.PathLike) -> DictDir:
    """Read and validate a dict dir; raise :class:`DataDirError` naming the file and line of the first problem."""
    path = Path(path)
    for name in ("silence_phones.txt", "nonsilence_phones.txt", "optional_silence.txt"):
        if not (path / name).is_file():
            raise DataDirError(str(path / name), None, "missing (a Kaldi dict dir needs it)")
    lex_path = path / "lexicon.txt"
    probs = False
    if not lex_path.is_file():
        lex_path, probs = path / "lexiconp.txt", True
        if not lex_path.is_file():
            raise DataDirError(str(path / "lexicon.txt"), None, "missing (neither lexicon.txt nor lexiconp.txt)")

    seen: dict[str, tuple[str, int]] = {}
    root_groups: list[list[str]] = []
    phone_lists: dict[str, list[str]] = {}
    for name in ("silence_phones.txt", "nonsilence_phones.txt"):
        phones = []
        for lineno, fields in _lines(path / name):
            for ph in fields:
                if ph in seen:
                    raise DataDirError(str(path / name), lineno,
                                       f"phone {ph!r} already listed in {seen[ph][0]} line {seen[ph][1]}")
                if ph.startswith("#") or ph == "<eps>":
                    raise DataDirError(str(path / name), lineno, f"phone {ph!r} is reserved")
                seen[ph] = (name, lineno)
                phones.append(ph)
            root_groups.append(fields)
        phone_lists[name] = phones
    if not phone_lists["silence_phones.txt"]:
        raise DataDirError(str(path / "silence_phones.txt"), None, "no silence phone")
    if not phone_lists["nonsilence_phones.txt"]:
        raise DataDirError(str(path / "nonsilence_phones.txt"), None, "no nonsilence phone")

    opt = _lines(path / "optional_silence.txt")
    if len(opt) != 1 or len(opt[0][1]) != 1:
        raise DataDirError(str(path / "optional_silence.txt"), None, "must hold exactly one phone")
    optional_silence = opt[0][1][0]
    if optional_silence not in phone_lists["silence_phones.txt"]:
        raise DataDirError(str(path / "optional_silence.txt"), 1,
                           f"{optional_silence!r} is not in silence_phones.txt")

    extra: list[list[str]] = []
    if (path / "extra_questions.txt").is_file():
        for lineno, fields in _lines(path / "extra_questions.txt"):
            for ph in fields:
                if ph not in seen:
                    raise DataDirError(str(path / "extra_questions.txt"), lineno, f"unknown phone {ph!r}")
            extra.append(fields)

    lexicon: list[tuple[str, list[str]]] = []
    entries: set[tuple[str, tuple[str, ...]]] = set()
    for lineno, fields in _lines(lex_path):
        word = fields[0]
        prons = fields[1:]
        if probs:
            try:
                p = float(prons[0])
            except (IndexError, ValueError):
                raise DataDirError(str(lex_path), lineno, "expected 'WORD PROB PH1 PH2 ...'") from None
            if not 0.0 < p <= 1.0:
                raise DataDirError(str(lex_path), lineno, f"pronunciation probability {p} not in (0, 1]")
            prons = prons[1:]
        if word in RESERVED_WORDS:
            raise DataDirError(str(lex_path), lineno, f"word {word!r} is reserved")
        if not prons:
            raise DataDirError(str(lex_path), lineno, f"word {word!r} has an empty pronunciation")
        for ph in prons:
            if ph not in seen:
                raise DataDirError(str(lex_path), lineno, f"word {word!r}: phone {ph!r} is not in the phone lists")
        key = (word, tuple(prons))
        if key in entries:
            raise DataDirError(str(lex_path), lineno, f"duplicate entry for {word!r}")
        entries.add(key)
        lexicon.append((word, prons))
    if not lexicon:
        raise DataDirError(str(lex_path), None, "empty lexicon")
    return DictDir(path=path, lexicon=lexicon, silence_phones=phone_lists["silence_phones.txt"],
                   nonsilence_phones=phone_lists["nonsilence_phones.txt"], optional_silence=optional_silence,
                   extra_questions=extra, root_groups=root_groups)


def check_transcripts(dict_dir: DictDir, text: dict[str, str], text_path: str) -> dict[str, int]:
    """Count out-of-vocabulary words of a data dir's ``text``.

    With ``<UNK>`` in the lexicon, OOVs are allowed (they will map to it) and their counts are returned.
    Without it, the first OOV raises an error naming the file, line and utterance.
    """
    vocab = {w for w, _ in dict_dir.lexicon}
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
    from asrdistill.utils import atomic_path

    dest = Path(dest)
    with atomic_path(dest) as tmp:
        tmp.mkdir()
        for name in ("lexicon.txt", "lexiconp.txt", "silence_phones.txt", "nonsilence_phones.txt",
                     "optional_silence.txt", "extra_questions.txt"):
            if (src.path / name).is_file():
                shutil.copyfile(src.path / name, tmp / name)
    return dest
