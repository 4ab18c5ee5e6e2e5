"""espeak-ng (en-us) phoneme mnemonics -> the project's 39 ARPAbet phones (stress stripped).

espeak names a phone with an ASCII mnemonic (``'aI``, ``dZ``, ``@L``); stress marks ``'`` and
``,`` and the palatalisation mark ``;`` are stripped first. Pause phonemes (``_``, ``_:``, ...)
are silence. A few espeak phones stand for two ARPAbet phones (``@L`` -> AH L, ``A@`` -> AA R);
in timings their duration is split equally between the two. The linking r (``r-``) maps to
nothing: its time goes to the phone before it. The same table maps the lexicon
(from ``espeak_TextToPhonemes``) and the phone timings (from phoneme events), so a word's
lexicon pronunciation and its phones in ``phones.ctm`` use the same phones.
"""
from __future__ import annotations

ARPABET = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
           "UH UW V W Y Z ZH").split()
SILENCE = "SIL"
SPOKEN_NOISE = "SPN"

ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # vowels
    "0": ("AA",), "A:": ("AA",), "A": ("AA",), "aa": ("AE",), "a": ("AE",), "a#": ("AH",),
    "@": ("AH",), "@-": ("AH",), "@2": ("AH",), "@5": ("AH",), "V": ("AH",), "@L": ("AH", "L"),
    "3": ("ER",), "3:": ("ER",), "@r": ("ER",), "3:r": ("ER",),
    "E": ("EH",), "E2": ("EH",), "e@": ("EH", "R"),
    "I": ("IH",), "I#": ("IH",), "I2": ("IH",), "i@": ("IH", "R"), "i@3": ("IY", "ER"),
    "i": ("IY",), "i:": ("IY",),
    "O": ("AO",), "O2": ("AO",), "O:": ("AO",), "O@": ("AO", "R"), "o@": ("AO", "R"),
    "OI": ("OY",), "oU": ("OW",), "o": ("OW",), "U": ("UH",), "U@": ("UH", "R"),
    "u:": ("UW",), "u": ("UW",), "aI": ("AY",), "aI3": ("AY", "ER"), "aI@": ("AY", "ER"),
    "aU": ("AW",), "aU@": ("AW", "ER"), "eI": ("EY",), "A@": ("AA", "R"),
    # consonants
    "b": ("B",), "d": ("D",), "D": ("DH",), "dZ": ("JH",), "f": ("F",), "g": ("G",), "h": ("HH",),
    "j": ("Y",), "k": ("K",), "l": ("L",), "m": ("M",), "n": ("N",), "n-": ("AH", "N"),
    "N": ("NG",), "p": ("P",), "r": ("R",), "s": ("S",), "S": ("SH",), "t": ("T",),
    "t#": ("T",), "t2": ("T",), "?": ("T",), "T": ("TH",), "tS": ("CH",), "v": ("V",), "w": ("W",),
    "z": ("Z",), "Z": ("ZH",), "x": ("K",), "l/": ("L",), "m-": ("AH", "M"),
    # linking r ("father_r and"): no phone of its own, its time goes to the preceding vowel
    "r-": (), ":": (),
}


def strip_stress(symbol: str) -> str:
    """Remove espeak's stress marks and the palatalisation mark from a mnemonic."""
    return symbol.replace("'", "").replace(",", "").replace(";", "")


def is_pause(symbol: str) -> bool:
    """espeak pause phonemes (``_``, ``_:``, ``_!`` ...) are silence."""
    return symbol.startswith("_")


def to_arpabet(symbol: str) -> tuple[str, ...]:
    """ARPAbet phones for one espeak mnemonic; () for a bare mark; KeyError if unknown."""
    s = strip_stress(symbol)
    if not s:
        return ()
    if s not in ESPEAK_TO_ARPABET:
        raise KeyError(f"espeak phoneme {symbol!r} has no ARPAbet mapping")
    return ESPEAK_TO_ARPABET[s]


def word_to_arpabet(symbols: list[str]) -> list[str]:
    return [p for s in symbols for p in to_arpabet(s)]
