"""A ctypes wrapper around the libespeak-ng bundled by ``espeakng-loader``.

espeak-ng keeps state between calls (wave generator filters, flutter phase, timing
toggles), so the same text synthesised twice in one process gives different samples. For
output that depends only on the utterance, use one fresh :class:`Espeak` per utterance and
:meth:`Espeak.close` it: that unloads the library (``dlclose``), and the next instance loads it
with fresh globals (about 2 ms). Only one instance may be open at a time. An instance initialises
espeak-ng in synchronous mode with phoneme events on, collects the 22050 Hz int16 samples the
synth callback delivers, and returns them together with the phoneme events (each phone's
espeak mnemonic and its start time in ms on the audio's time axis).
``phonemize`` gives a word's phonemes as espeak mnemonics via ``espeak_TextToPhonemes``.
:func:`data_with_variants` makes a data directory that holds extra voice variants (espeak-ng finds a
variant only under its data directory's ``voices/!v/`` and falls back to the base voice, silently, for an
unknown one).
"""
from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EVENT_END = 5
EVENT_MSG_TERMINATED = 6
EVENT_PHONEME = 7
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


@dataclass
class Synthesis:
    """One synthesised utterance: int16 samples at ``sample_rate`` and its phoneme events.

    ``phones`` is a list of (espeak mnemonic, start ms); ``words`` a list of (text position, start ms).
    """

    samples: np.ndarray
    sample_rate: int
    phones: list[tuple[str, int]]
    words: list[tuple[int, int]]


class Espeak:
    """espeak-ng through ctypes (synchronous output, phoneme events on)."""

    def __init__(self, data_path: str | None = None) -> None:
        """``data_path``: an espeak-ng data directory (default: the bundled one), e.g. from
        :func:`data_with_variants`."""
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        self.data_path = data_path or espeakng_loader.get_data_path()
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(),
                                                 INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({self.sample_rate}); data path {self.data_path!r}")
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._phones: list[tuple[str, int]] = []
        self._words: list[tuple[int, int]] = []
        self._callback = _SynthCallback(self._on_synth)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: bytes | None = None
        self._closed = False

    def close(self) -> None:
        """Terminate espeak-ng and unload the library so the next instance starts fresh."""
        import _ctypes

        if self._closed:
            return
        self._closed = True
        self._lib.espeak_Terminate()
        handle = self._lib._handle
        self._lib = None
        _ctypes.dlclose(handle)

    def __enter__(self) -> "Espeak":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _on_synth(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_PHONEME:
                self._phones.append((ev.id.string.decode("ascii", "replace"), ev.audio_position))
            elif ev.type == EVENT_WORD:
                self._words.append((ev.text_position, ev.audio_position))
            i += 1
        return 0

    def set_voice(self, name: str) -> None:
        """Select a voice such as ``en-us+f3`` (language + variant)."""
        import os

        raw = name.encode()
        if raw != self._voice:
            variant = name.split("+", 1)[1] if "+" in name else ""
            # espeak-ng takes an unknown variant for the base voice without a word
            if variant and not os.path.isfile(os.path.join(self.data_path, "voices", "!v", variant)):
                raise ValueError(f"espeak-ng has no voice variant {variant!r} in {self.data_path}")
            if self._lib.espeak_SetVoiceByName(raw) != 0:
                raise ValueError(f"espeak-ng has no voice {name!r}")
            self._voice = raw

    def set_parameters(self, rate: int, pitch: int, pitch_range: int, volume: int = 80) -> None:
        """Rate in words per minute, pitch and pitch range 0-100, volume 0-200."""
        for param, value in ((PARAM_RATE, rate), (PARAM_PITCH, pitch), (PARAM_RANGE, pitch_range),
                             (PARAM_VOLUME, volume)):
            if self._lib.espeak_SetParameter(param, int(value), 0) != 0:
                raise ValueError(f"espeak_SetParameter({param}, {value}) failed")

    def synthesize(self, text: str, seed: int = 0) -> Synthesis:
        """Speak ``text`` with the current voice and parameters.

        ``seed`` seeds espeak-ng's own generator and the C library's ``rand`` (breathiness and
        noise sources of some voice variants use it).
        """
        ctypes.CDLL(None).srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        self._lib.espeak_ng_SetRandSeed(seed & 0x7FFFFFFF)
        self._chunks, self._phones, self._words = [], [], []
        raw = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(raw)
        rc = self._lib.espeak_Synth(buf, len(raw), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed ({rc}) on {text!r}")
        self._lib.espeak_Synchronize()
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Synthesis(samples.astype(np.int16), self.sample_rate, self._phones, self._words)

    def phonemize(self, text: str) -> list[list[str]]:
        """Phonemes of ``text`` as espeak mnemonics (stress marks kept), one list per output word.

        More than one list means espeak expanded the text (numbers, abbreviations, roman numerals).
        """
        raw = ctypes.c_char_p(text.encode("utf-8"))
        ptr = ctypes.pointer(raw)
        words: list[list[str]] = []
        # bits 8-23: separator between phonemes ('_'); espeak mnemonics (not IPA)
        mode = ord("_") << 8
        while raw.value:
            out = self._lib.espeak_TextToPhonemes(ptr, CHARS_UTF8, mode)
            if out is None:
                break
            for chunk in out.decode("utf-8").split():
                phones = [p for p in chunk.split("_") if p]
                if phones:
                    words.append(phones)
        return words


@functools.lru_cache(maxsize=None)
def variant_text(variant: str) -> str:
    """The text of the bundled espeak-ng voice variant file ``voices/!v/<variant>`` (read once: every generated
    voice reads its donors' files)."""
    from pathlib import Path

    import espeakng_loader

    path = Path(espeakng_loader.get_data_path()) / "voices" / "!v" / variant
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise ValueError(f"espeak-ng has no voice variant {variant!r} ({err})") from None


def variant_formant_factors(variant: str) -> dict[int, int]:
    """Formant frequency factors (percent of the base voice's) of an espeak-ng voice variant, by formant
    number, read from the bundled ``voices/!v/<variant>`` file (see :func:`formant_factors`)."""
    return formant_factors(variant_text(variant))


def formant_factors(text: str) -> dict[int, int]:
    """Formant frequency factors by formant number from a variant file's text (``formant N freq strength
    width`` lines); a formant the file does not set keeps the base voice's (100)."""
    factors = {n: 100 for n in range(9)}
    for line in text.splitlines():
        words = line.split("//")[0].split()
        if len(words) >= 3 and words[0] == "formant" and words[1].isdigit():
            factors[int(words[1])] = int(words[2])
    return factors


#: Settings of a variant file other than its name, gender, pitch and formants, in groups that only work
#: together: how the voice is excited (voicing, breath, roughness, flutter, tone, echo, consonants) and how it
#: stresses and intones. The stress settings are one group: a syllable's length is stressLength plus
#: stressAdd, and one voice's short stressLength with another's negative stressAdd makes espeak-ng draw each
#: syllable out for seconds (measured: 45-60 s utterances).
VOICE_SETTING_GROUPS = (("voicing",), ("breath", "breathw"), ("roughness",), ("flutter",), ("tone",), ("echo",),
                        ("consonants",), ("intonation",), ("stressLength", "stressAdd", "stressAmp"))
VOICE_SETTINGS = tuple(k for group in VOICE_SETTING_GROUPS for k in group)


def variant_settings(text: str) -> dict[str, list[str]]:
    """The :data:`VOICE_SETTINGS` lines of a variant file's text, by keyword (comments dropped; a keyword
    may have several lines: espeak-ng reads them in order)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.split("//")[0].split()
        if words and words[0] in VOICE_SETTINGS:
            found.setdefault(words[0], []).append(" ".join(words))
    return found


#: espeak-ng lists at most this many voices (language files and variants; its N_VOICES_LIST - 1) and warns for
#: each one past it, once per voice lookup.
MAX_LISTED_VOICES = 349


def data_with_variants(dest: str, variants: dict[str, str], keep: tuple[str, ...] | None = None) -> str:
    """Make ``dest`` an espeak-ng data directory that is the bundled one plus the voice variants
    ``variants`` (file name -> text of a variant file), and return its path.

    Every entry of the bundled directory is linked, not copied; ``voices/!v/`` is a directory of links to
    the bundled variants (only those named in ``keep`` when given) and the new files. A name that is already a
    bundled variant is an error, and so are more voices than espeak-ng lists (:data:`MAX_LISTED_VOICES`).
    Keep ``dest`` short: espeak-ng keeps its data path in a fixed-size buffer.
    """
    import os
    from pathlib import Path

    import espeakng_loader

    src, out = Path(espeakng_loader.get_data_path()), Path(dest)
    bundled = [e for e in (src / "voices" / "!v").iterdir() if keep is None or e.name in keep]
    if keep is not None and len(bundled) != len(set(keep)):
        missing = sorted(set(keep) - {e.name for e in bundled})
        raise ValueError(f"espeak-ng has no voice variant(s) {', '.join(missing)}")
    languages = sum(1 for f in (src / "lang").rglob("*") if f.is_file())
    listed = languages + len(bundled) + len(variants)
    if listed > MAX_LISTED_VOICES:
        raise ValueError(f"{len(variants)} new voice variants make {listed} voices with the {languages} languages "
                         f"and {len(bundled)} bundled variants; espeak-ng lists at most {MAX_LISTED_VOICES}")
    out.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name != "voices":
            os.symlink(entry, out / entry.name)
    (out / "voices").mkdir()
    for entry in (src / "voices").iterdir():
        if entry.name != "!v":
            os.symlink(entry, out / "voices" / entry.name)
    vdir = out / "voices" / "!v"
    vdir.mkdir()
    for entry in bundled:
        os.symlink(entry, vdir / entry.name)
    for name, text in variants.items():
        if (vdir / name).exists() or "/" in name or not name:
            raise ValueError(f"voice variant name {name!r} is taken or not a file name")
        (vdir / name).write_text(text, encoding="utf-8")
    return str(out)
