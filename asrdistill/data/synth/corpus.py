"""``prepare_synth``: the built-in synthetic corpus, generated offline with espeak-ng.

Speakers are US-English espeak-ng voice variants (half female, half male), each with its own
pitch, pitch range and speaking rate; every utterance jitters the rate. Sentences come from
the template grammar of :mod:`.grammar`. Each utterance is synthesised at 22050 Hz, resampled
to 16 kHz, padded with leading/trailing silence, reverberated with a synthetic RIR and mixed
with white/pink/babble-like noise at a random SNR (:mod:`.acoustics`). Every random choice of
an utterance comes from a generator seeded by (seed, utterance id), so the same seed and
options give byte-identical files whatever ``nj`` is.

Output (``out_dir``)::

    wav/<split>/<spk>/<utt>.wav        16 kHz, 16-bit mono
    data/{train,dev,test}/             Kaldi data dirs: wav.scp (absolute paths), text, utt2spk,
                                       spk2utt, spk2gender, phones.ctm
    dict/                              lexicon.txt, silence_phones.txt, nonsilence_phones.txt,
                                       optional_silence.txt, extra_questions.txt
    utterances.jsonl                   per-utterance generation parameters (voice, rate, SNR, RT60 ...)
    speakers.json                      every speaker's split, voice, pitch, range and rate
    voices/<name>                      the generated voices' espeak-ng variant files (if any)
    summary.json                       corpus statistics (see :class:`SynthCorpus`)
    .done                              completion marker

``phones.ctm`` holds the ground-truth phone timings from espeak's phoneme events, in Kaldi
CTM format, one line per phone segment, utterances in sorted order::

    <utt> 1 <start-sec> <dur-sec> <PHONE>

with start and duration in seconds with 3 decimals on the 16 kHz output's time axis (the added
leading silence included). The segments of an utterance are contiguous and cover it from 0 to
its end (to the millisecond); leading/trailing silence and espeak's pauses are ``SIL``. Phones
are the 39 ARPAbet phones mapped from espeak's mnemonics by :mod:`.phones` with the same
table as the lexicon; an espeak phone that maps to two ARPAbet phones (``@L`` -> AH L) has its
duration split equally.

Speakers are split speaker-disjoint into train/dev/test (16/12/12 for the default 40 speakers; small
corpora hold out ~20% of the speakers per split), genders balanced. The held-out voice variants are never
heard in training, and each of them speaks once in dev and once in test (two speakers with their own pitch,
range and rate): dev and test are matched sets of the same unseen voices, so the choices made on dev meet
the same kinds of voice on test, and each set has as many independent voices as the synthesizer offers.
``generated_test_speakers`` adds test speakers with voices of their own drawn at random in the adult range,
with the other settings of the bundled held-out voices (:func:`generated_voice`): 12 bundled voices are too
few to measure a 1-point WER difference between systems, and a voice heard once, in test only, is as unseen
as a voice can be. Their audio comes on top of ``hours``.
Dev/test sentences never occur in train. Dev and test speakers read ``eval_utts_per_speaker`` sentences each
(more speakers, fewer utterances). The lexicon has each word's citation form plus the pronunciation variants
spoken in the training split only.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from asrdistill.errors import UserFacingError
from asrdistill.utils import get_logger, is_done, mark_done, write_json_atomic

log = get_logger(__name__)

SAMPLE_RATE = 16000
SPLITS = ("train", "dev", "test")
# US-English variants, chosen to sound distinct (near-duplicates such as linda ~ belinda, Michael ~ Mario,
# pedro ~ john or john ~ m6 left out). The last HELD_OUT_VOICES of each list are the dev/test speakers' (each
# unheard in train, one dev and one test speaker per variant); training speakers share the others (see
# :func:`make_speakers`). The bundled espeak-ng has no further female variant that passes :func:`adult_voice`
# and is not a near-duplicate of one of these (linda ~ belinda, anikaRobot ~ anika; whisperf is unvoiced).
# Held-out voices must pass :func:`adult_voice`; training voices need not (odd voices in training only add
# variety).
FEMALE_VOICES = ("f1", "f2", "f4", "f5", "steph", "grandma", "Alicia", "shelby",
                 "Andrea", "Annie", "anika", "belinda", "f3", "aunty")
MALE_VOICES = ("m1", "m6", "m7", "Andy", "travis", "victor", "Hugo", "ed",
               "m2", "m3", "m4", "m8", "quincy", "Mike")
HELD_OUT_VOICES = 6
# Formant frequency factors (% of espeak's base voice, an adult male) a held-out voice may have on F1-F5: from
# a long adult male vocal tract (85%) to a short adult female one (135%; children lie above). Outside it espeak
# makes voices no adult has (a formant pushed under the one below it, F2 at 150%), which every system then
# fails alike (measured: 75-100% WER for all systems on three such voices), so they only add noise to the
# comparisons. Chosen from the voice files alone, before any system was evaluated on the new held-out set.
ADULT_FORMANT_RANGE = (85, 135)


def adult_voice(variant: str) -> bool:
    """True if every formant F1-F5 of the espeak-ng variant lies in :data:`ADULT_FORMANT_RANGE`."""
    from asrdistill.lang.espeak import variant_formant_factors

    factors = variant_formant_factors(variant)
    lo, hi = ADULT_FORMANT_RANGE
    return all(lo <= factors[n] <= hi for n in range(1, 6))


# Generated voices (test only; :func:`generated_voice`). The bundled espeak-ng offers 12 adult voices unheard in
# training, too few test voices to measure a 1-point WER difference (README, "Measured"). A generated voice is
# a variant file with a vocal-tract scale (all five formant frequencies, % of the base voice), each formant
# jittered by +-5% around it and kept in ADULT_FORMANT_RANGE, random formant strengths and a pitch base and
# range (Hz). The ranges are those of the bundled adult held-out voices' files (female F1-F5 95-135%, pitch
# base 120-205 Hz; male 90-110%, 65-90 Hz), chosen from the voice files alone, before any system was
# evaluated on a generated voice. Every other setting (voicing, breath, roughness, flutter, tone, echo,
# consonants, intonation, stress; lang.espeak.VOICE_SETTING_GROUPS) is that of a bundled held-out voice of the
# same gender drawn for that setting (or group of settings that only work together) alone, so each setting is
# as common among generated voices as among the bundled ones (a donor without it gives none). Voices with
# formants and pitch only were easier than every bundled voice (test WER ~7-9 vs ~14-15 for the same systems);
# with these settings they are less so (~8-10), README "Measured".
GENERATED_SCALE = {"f": (105.0, 122.0), "m": (92.0, 104.0)}
GENERATED_PITCH_BASE = {"f": (135, 205), "m": (65, 92)}
GENERATED_PITCH_RANGE = {"f": (45, 100), "m": (25, 50)}


def held_out_variants(gender: str) -> tuple[str, ...]:
    """The bundled voice variants of the dev/test speakers of a gender (see :func:`make_speakers`)."""
    variants = FEMALE_VOICES if gender == "f" else MALE_VOICES
    return variants[len(variants) - HELD_OUT_VOICES:]


def generated_voice(seed: int, name: str, gender: str) -> str:
    """The text of an espeak-ng variant file for a new adult voice (see :data:`GENERATED_SCALE`), drawn by
    (seed, name): the same seed and name give the same voice."""
    from asrdistill.lang.espeak import VOICE_SETTING_GROUPS, variant_settings, variant_text

    rng = utterance_rng(seed, f"voice:{name}")
    scale = rng.uniform(*GENERATED_SCALE[gender])
    base = int(rng.integers(GENERATED_PITCH_BASE[gender][0], GENERATED_PITCH_BASE[gender][1] + 1))
    top = base + int(rng.integers(GENERATED_PITCH_RANGE[gender][0], GENERATED_PITCH_RANGE[gender][1] + 1))
    lo, hi = ADULT_FORMANT_RANGE
    lines = ["language variant", f"name {name}", f"gender {'female' if gender == 'f' else 'male'}",
             f"pitch {base} {top}"]
    for n in range(1, 6):
        factor = int(round(min(max(scale * rng.uniform(0.95, 1.05), lo), hi)))
        lines.append(f"formant {n} {factor} {int(rng.integers(85, 116))} 100")
    # drawn after the formants and pitch, which are therefore those of the voices made before these settings
    donors = held_out_variants(gender)
    for group in VOICE_SETTING_GROUPS:
        donor = donors[int(rng.integers(len(donors)))]
        settings = variant_settings(variant_text(donor))
        lines += [f"{line}  // from {donor}" for setting in group for line in settings.get(setting, [])]
    return "\n".join(lines) + "\n"


def generated_voices(opts: "SynthOptions", speakers: list["Speaker"]) -> dict[str, str]:
    """Variant name -> variant file text of every generated voice among ``speakers``."""
    return {s.variant: generated_voice(opts.seed, s.variant, s.gender) for s in speakers if s.generated}


DONE_MARKER = ".done"


@dataclass
class SynthOptions:
    """Everything that determines the corpus (besides the package's word lists)."""

    hours: float = 3.0               # total audio (train + dev + test), approximately
    num_speakers: int = 40
    seed: int = 0
    snr_db: tuple[float, float] = (5.0, 20.0)
    rt60: tuple[float, float] = (0.15, 0.4)
    noise_types: tuple[str, ...] = ("white", "pink", "babble")
    rate_wpm: tuple[float, float] = (145.0, 195.0)
    rate_jitter: float = 0.08
    pitch: tuple[int, int] = (25, 75)
    pitch_range: tuple[int, int] = (25, 85)
    lead_silence: tuple[float, float] = (0.15, 0.5)
    trail_silence: tuple[float, float] = (0.2, 0.5)
    dev_speakers: int = 12           # at most; small corpora hold out ~20% of the speakers per split
    test_speakers: int = 12
    eval_utts_per_speaker: int = 20  # dev/test: more speakers, fewer utterances each
    generated_test_speakers: int = 0  # extra test speakers, each with a voice of its own drawn at random
    generated_utts_per_speaker: int = 10  # sentences each of them reads, at most (on top of hours)


@dataclass
class Speaker:
    id: str
    gender: str           # "f" or "m"
    voice: str            # espeak voice, e.g. "en-us+f3"
    pitch: int
    pitch_range: int
    rate: float           # words per minute before the per-utterance jitter
    split: str
    generated: bool = False  # voice drawn by :func:`generated_voice`, not a bundled variant

    @property
    def variant(self) -> str:
        """The espeak-ng voice variant (``f3`` of ``en-us+f3``)."""
        return self.voice.split("+", 1)[1]


@dataclass
class UtteranceSpec:
    utt: str
    split: str
    speaker: Speaker
    words: list[str]
    spoken: str           # the text handed to espeak (with final punctuation)


@dataclass
class SynthCorpus:
    """Summary of a generated corpus (also written as ``summary.json``)."""

    out_dir: str
    hours: dict[str, float]
    speakers: dict[str, list[str]]
    utterances: dict[str, int]
    vocabulary_size: int
    phone_count: int
    espeak_symbols: int
    snr_db: list[float]
    rt60: list[float]
    noise_types: list[str]
    generation_seconds: float
    real_time_factor: float   # seconds of audio generated per second of wall clock
    nj: int
    seed: int = 0
    options: dict = field(default_factory=dict)

    @property
    def data_dirs(self) -> dict[str, Path]:
        return {s: Path(self.out_dir) / "data" / s for s in SPLITS}

    @property
    def dict_dir(self) -> Path:
        return Path(self.out_dir) / "dict"


def utterance_rng(seed: int, key: str) -> np.random.Generator:
    """A generator seeded by (seed, key); independent of process and order."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


# ---------------------------------------------------------------- planning (main process)

def held_out_counts(opts: SynthOptions) -> tuple[int, int]:
    """(dev, test) speakers: ``dev_speakers`` / ``test_speakers`` while at least 40% of the speakers stay
    for training, else at most ~20% of the speakers each (28 speakers: 6 / 6; 6 speakers: 1 / 1)."""
    n = opts.num_speakers
    if n - opts.dev_speakers - opts.test_speakers >= 0.4 * n:
        return opts.dev_speakers, opts.test_speakers
    share = max(1, round(n * 0.2))
    return min(opts.dev_speakers, share), min(opts.test_speakers, share)


def make_speakers(opts: SynthOptions) -> list[Speaker]:
    """Speakers f01.. and m01.., split speaker-disjoint and gender-balanced.

    Held-out speakers are the last ones of each gender, alternating f/m, test first. Their voice variants
    are the last :data:`HELD_OUT_VOICES` of each gender's list (adult voices, see :func:`adult_voice`): the
    k-th dev speaker and the k-th test speaker of a gender share the k-th of them from the end, so within a
    split every speaker has a variant of its own and dev and test hold the same unseen voices. Training
    speakers cycle through the other variants, so no variant of a dev or test speaker is ever heard in
    training (with more speakers than variants, training speakers share variants and differ in pitch, range
    and rate). ``generated_test_speakers`` more test speakers (ids after each gender's last) each get a voice
    of their own from :func:`generated_voice`, heard nowhere else.
    """
    n = opts.num_speakers
    if n < 3:
        raise UserFacingError(f"num_speakers must be at least 3 (train/dev/test), got {n}")
    n_dev, n_test = held_out_counts(opts)
    if n - n_dev - n_test < 1:
        raise UserFacingError(f"{n} speakers leave none for train")
    n_f = (n + 1) // 2
    female = [f"f{i + 1:02d}" for i in range(n_f)]
    male = [f"m{i + 1:02d}" for i in range(n - n_f)]
    held: list[str] = []
    pools = [list(female), list(male)]
    g = 0
    while len(held) < n_dev + n_test:
        if pools[g % 2]:
            held.append(pools[g % 2].pop())
        g += 1
    test_ids = held[:n_test]
    dev_ids = held[n_test:]
    voice: dict[str, str] = {}
    for ids, gender, variants in ((female, "f", FEMALE_VOICES), (male, "m", MALE_VOICES)):
        own = held_out_variants(gender)
        for split_ids in (dev_ids, test_ids):
            here = [s for s in ids if s in split_ids]
            if len(here) > HELD_OUT_VOICES:
                raise UserFacingError(f"{len(here)} held-out speakers of one gender in one split need more "
                                      f"than the {HELD_OUT_VOICES} held-out voice variants there are")
            for k, spk in enumerate(here):
                voice[spk] = own[-1 - k]
        shared = variants[:len(variants) - len(own)]
        for k, spk in enumerate(s for s in ids if s not in held):
            voice[spk] = shared[k % len(shared)]
    # generated test speakers continue each gender's numbering, half female; each has a voice of its own
    n_gen = max(0, opts.generated_test_speakers)
    generated = ([f"f{n_f + i + 1:02d}" for i in range((n_gen + 1) // 2)]
                 + [f"m{n - n_f + i + 1:02d}" for i in range(n_gen // 2)])
    for spk in generated:
        voice[spk] = f"gen_{spk}"
    speakers = []
    for spk in female + male + generated:
        rng = utterance_rng(opts.seed, f"speaker:{spk}")
        split = "test" if spk in test_ids or spk in generated else "dev" if spk in dev_ids else "train"
        speakers.append(Speaker(
            id=spk, gender=spk[0], voice=f"en-us+{voice[spk]}",
            pitch=int(rng.integers(opts.pitch[0], opts.pitch[1] + 1)),
            pitch_range=int(rng.integers(opts.pitch_range[0], opts.pitch_range[1] + 1)),
            rate=float(round(rng.uniform(*opts.rate_wpm), 1)), split=split, generated=spk in generated))
    return sorted(speakers, key=lambda s: s.id)


def estimate_seconds(n_phones: int, rate: float, opts: SynthOptions) -> float:
    """Rough duration of an utterance, used only to plan how many to make."""
    lead_trail = (sum(opts.lead_silence) + sum(opts.trail_silence)) / 2
    return n_phones * 0.067 * 175.0 / rate + 0.3 + lead_trail  # calibrated on the 3 h default


def plan_utterances(opts: SynthOptions, speakers: list[Speaker], generator,
                    lexicon: dict[str, list[str]]) -> list[UtteranceSpec]:
    """Sentences per speaker; dev/test sentences unseen in train.

    A dev/test speaker reads ``eval_utts_per_speaker`` sentences but no more audio than an even share of
    ``hours`` (so tiny corpora stay tiny); the training speakers share the rest of ``hours``.
    """
    planned = [s for s in speakers if not s.generated]   # generated speakers come on top of ``hours``
    share = opts.hours * 3600.0 / len(planned)
    held = [s for s in planned if s.split != "train"]
    train = [s for s in planned if s.split == "train"]
    eval_budget = min(share, opts.eval_utts_per_speaker * 3.0)  # ~3 s per utterance (planning only)
    train_budget = max(share, (opts.hours * 3600.0 - eval_budget * len(held)) / max(len(train), 1))
    seen: set[str] = set()
    specs: list[UtteranceSpec] = []
    for spk in train + held + [s for s in speakers if s.generated]:
        rng = utterance_rng(opts.seed, f"text:{spk.id}")
        total, i = 0.0, 0
        budget = train_budget if spk.split == "train" else eval_budget
        limit = None if spk.split == "train" else opts.eval_utts_per_speaker
        if spk.generated:
            limit = opts.generated_utts_per_speaker
            budget = limit * 3.0
        while total < budget and (limit is None or i < limit):
            for _ in range(1000):
                sent = generator.sentence(rng)
                if spk.split == "train" or sent.text not in seen:
                    break
            else:
                raise RuntimeError("could not draw a sentence unseen in train")
            seen.add(sent.text)
            specs.append(UtteranceSpec(f"{spk.id}-{i:05d}", spk.split, spk, sent.words, sent.spoken))
            total += estimate_seconds(sum(len(lexicon[w]) for w in sent.words), spk.rate, opts)
            i += 1
    return sorted(specs, key=lambda s: s.utt)


# ---------------------------------------------------------------- rendering (workers)

def _espeak(data_path: str | None = None):
    """A fresh espeak-ng instance (see :mod:`.espeak`: output must not depend on history)."""
    from asrdistill.lang.espeak import Espeak

    return Espeak(data_path)


def phone_segments(events: list[tuple[str, int]], n_samples: int, sample_rate: int
                   ) -> list[tuple[float, float, str]]:
    """(start s, end s, ARPAbet phone or SIL) covering [0, n_samples / sample_rate] contiguously.

    A phone lasts from its event to the next event. espeak gives some phones no time of their
    own (a dark l melted into the vowel before it: ``tool.`` has ``l`` and the pause at the
    same ms); such a phone shares the segment of the phone before it (split equally).
    """
    from asrdistill.lang.arpabet import SILENCE, is_pause, to_arpabet

    end_time = n_samples / sample_rate
    raw: list[tuple[float, list[str]]] = [(0.0, [SILENCE])]
    for sym, ms in events:
        phones = [SILENCE] if is_pause(sym) else list(to_arpabet(sym))
        if phones:
            raw.append((min(ms / 1000.0, end_time), phones))
    raw.append((end_time, []))  # sentinel
    kept: list[tuple[float, list[str]]] = []
    pending: list[str] = []      # zero-length phones with nothing before them to join
    for k in range(len(raw) - 1):
        start, phones = raw[k]
        if raw[k + 1][0] <= start:  # no time of its own
            if phones != [SILENCE]:
                if kept and kept[-1][1] != [SILENCE]:
                    kept[-1][1].extend(phones)
                else:
                    pending.extend(phones)
            continue
        if pending and phones != [SILENCE]:
            phones, pending = pending + phones, []
        kept.append((start, list(phones)))
    segs: list[tuple[float, float, str]] = []
    for k, (start, phones) in enumerate(kept):
        end = kept[k + 1][0] if k + 1 < len(kept) else end_time
        step = (end - start) / len(phones)
        for j, ph in enumerate(phones):
            segs.append((start + j * step, start + (j + 1) * step, ph))
    return segs


def word_pronunciations(words: list[str], lexicon: dict[str, list[str]],
                        spoken_phones: list[str]) -> list[list[str]]:
    """Each word's ARPAbet phones as spoken in context (espeak reduces ``to``, ``a``, ``the``...).

    espeak's word events are not reliable enough at word boundaries (and it merges ``in the``),
    so the spoken phone sequence (from the phoneme events, silence removed) is aligned with the
    words' lexicon phones by edit distance; a spoken phone belongs to the word of the lexicon
    phone it aligns with, an inserted phone to the word before it.
    """
    import kaldialign

    ref, owner = [], []
    for k, w in enumerate(words):
        ref.extend(lexicon[w])
        owner.extend([k] * len(lexicon[w]))
    prons: list[list[str]] = [[] for _ in words]
    i, cur = 0, 0
    for r, h in kaldialign.align(ref, spoken_phones, "*"):
        if r != "*":
            cur = owner[i]
            i += 1
        if h != "*":
            prons[cur].append(h)
    return prons


def merge_silence(segs: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    out: list[tuple[float, float, str]] = []
    for s, e, ph in segs:
        if out and out[-1][2] == ph == "SIL":
            out[-1] = (out[-1][0], e, ph)
        else:
            out.append((s, e, ph))
    return out


def ctm_lines(utt: str, segs: list[tuple[float, float, str]]) -> list[str]:
    """CTM lines with boundaries rounded to ms so that segments stay contiguous."""
    lines = []
    bounds = [round(s, 3) for s, _, _ in segs] + [round(segs[-1][1], 3)]
    for k, (_, _, ph) in enumerate(segs):
        start, end = bounds[k], bounds[k + 1]
        if end - start < 0.0005:
            continue
        lines.append(f"{utt} 1 {start:.3f} {end - start:.3f} {ph}")
    return lines


@dataclass
class Rendered:
    utt: str
    samples: np.ndarray          # int16 at 16 kHz
    segments: list[tuple[float, float, str]]
    info: dict


def render_utterance(spec: UtteranceSpec, opts: SynthOptions, lexicon: dict[str, list[str]],
                     degrade: bool = True, espeak_data: str | None = None) -> Rendered:
    """Synthesise one utterance; ``degrade=False`` gives the clean (padded) signal, same scale.

    ``espeak_data``: a data directory that holds the generated voices (:func:`voices_data_dir`); a
    generated speaker's utterance without one makes its own for the call.
    """
    if spec.speaker.generated and espeak_data is None:
        with voices_data_dir(generated_voices(opts, [spec.speaker])) as path:
            return render_utterance(spec, opts, lexicon, degrade, path)
    from scipy.signal import resample_poly

    from asrdistill.data.synth import acoustics

    rng = utterance_rng(opts.seed, f"utt:{spec.utt}")
    rate = spec.speaker.rate * (1.0 + rng.uniform(-opts.rate_jitter, opts.rate_jitter))
    lead = rng.uniform(*opts.lead_silence)
    trail = rng.uniform(*opts.trail_silence)
    rt60 = rng.uniform(*opts.rt60)
    drr_db = rng.uniform(3.0, 10.0)
    noise_type = opts.noise_types[int(rng.integers(len(opts.noise_types)))]
    snr = rng.uniform(*opts.snr_db)
    peak = rng.uniform(0.3, 0.8)

    with _espeak(espeak_data) as es:
        es.set_voice(spec.speaker.voice)
        es.set_parameters(rate=int(round(rate)), pitch=spec.speaker.pitch,
                          pitch_range=spec.speaker.pitch_range, volume=80)
        syn = es.synthesize(spec.spoken, seed=int(rng.integers(2**31)))
    x = resample_poly(syn.samples.astype(np.float64) / 32768.0, 320, 441)
    n_lead, n_trail = int(round(lead * SAMPLE_RATE)), int(round(trail * SAMPLE_RATE))
    y = np.concatenate([np.zeros(n_lead), x, np.zeros(n_trail)])
    segs = phone_segments(syn.phones, len(x), SAMPLE_RATE)
    segs = [(s + n_lead / SAMPLE_RATE, e + n_lead / SAMPLE_RATE, p) for s, e, p in segs]
    segs = merge_silence([(0.0, n_lead / SAMPLE_RATE, "SIL")] + segs
                         + [(segs[-1][1], len(y) / SAMPLE_RATE, "SIL")])
    prons = word_pronunciations(spec.words, lexicon, [p for _, _, p in segs if p != "SIL"])

    rir = acoustics.synthetic_rir(rng, rt60, SAMPLE_RATE, drr_db)
    reverberant = acoustics.reverberate(y, rir)
    noise = acoustics.make_noise(rng, noise_type, len(y), SAMPLE_RATE)
    noisy = acoustics.add_noise(reverberant, noise, snr, (n_lead, n_lead + len(x)))
    gain = peak / max(float(np.max(np.abs(noisy))), 1e-9)
    out = (noisy if degrade else reverberant) * gain
    samples = np.clip(np.round(out * 32767.0), -32768, 32767).astype(np.int16)
    info = dict(utt=spec.utt, speaker=spec.speaker.id, voice=spec.speaker.voice, spoken=spec.spoken,
                rate=round(rate, 2), pitch=spec.speaker.pitch, pitch_range=spec.speaker.pitch_range,
                snr_db=round(snr, 3), rt60=round(rt60, 4), drr_db=round(drr_db, 3),
                noise=noise_type, lead_silence=round(n_lead / SAMPLE_RATE, 4),
                speech_region=[n_lead, n_lead + len(x)], seconds=len(samples) / SAMPLE_RATE,
                prons=[" ".join(p) for p in prons])
    return Rendered(spec.utt, samples, segs, info)


@contextlib.contextmanager
def voices_data_dir(variants: dict[str, str]):
    """An espeak-ng data directory with the voice variants ``variants`` (:func:`generated_voices`; None if
    there are none) and, of the bundled variants, those of :data:`FEMALE_VOICES` and :data:`MALE_VOICES` only
    (espeak-ng lists at most 349 voices, 141 of them languages), in a short-lived temporary directory
    (espeak-ng keeps its data path in a small buffer)."""
    from asrdistill.lang.espeak import data_with_variants

    if not variants:
        yield None
        return
    tmp = tempfile.mkdtemp(prefix="espeak.")
    try:
        try:
            path = data_with_variants(os.path.join(tmp, "d"), variants, keep=FEMALE_VOICES + MALE_VOICES)
        except ValueError as err:
            raise UserFacingError(f"generated test speakers: {err}") from None
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _render_and_write(job: tuple[UtteranceSpec, SynthOptions, dict[str, list[str]], str, str | None]
                      ) -> tuple[str, list[str], dict]:
    import soundfile as sf

    spec, opts, lexicon, wav_path, espeak_data = job
    r = render_utterance(spec, opts, lexicon, espeak_data=espeak_data)
    Path(wav_path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(wav_path, r.samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return r.utt, ctm_lines(r.utt, r.segments), r.info


# ---------------------------------------------------------------- lexicon

def build_lexicon(words: set[str]) -> tuple[dict[str, list[str]], dict[str, list[str]], set[str]]:
    """(lexicon word -> ARPAbet, word -> espeak symbols, words dropped because they expand)."""
    from asrdistill.lang.arpabet import strip_stress, word_to_arpabet

    lexicon, symbols, dropped = {}, {}, set()
    with _espeak() as es:
        es.set_voice("en-us")
        phonemized = {w: es.phonemize(w) for w in sorted(words)}
    for w, parts in phonemized.items():
        if len(parts) != 1:
            dropped.add(w)
            continue
        symbols[w] = [strip_stress(s) for s in parts[0] if strip_stress(s)]
        lexicon[w] = word_to_arpabet(parts[0])
    return lexicon, symbols, dropped


def write_dict_dir(path: Path, lexicon: dict[str, list[str]],
                   variants: dict[str, set[str]] | None = None) -> None:
    """Kaldi dict dir: each word's citation form plus the variants spoken in context (in training)."""
    from asrdistill.lang.arpabet import ARPABET, SILENCE, SPOKEN_NOISE

    path.mkdir(parents=True)
    entries = {f"{w} {' '.join(p)}" for w, p in lexicon.items()} | {f"<UNK> {SPOKEN_NOISE}"}
    for w, prons in (variants or {}).items():
        entries.update(f"{w} {p}" for p in prons if p)
    (path / "lexicon.txt").write_text("".join(e + "\n" for e in sorted(entries, key=lambda s: s.encode())))
    (path / "silence_phones.txt").write_text(f"{SILENCE}\n{SPOKEN_NOISE}\n")
    (path / "optional_silence.txt").write_text(f"{SILENCE}\n")
    (path / "nonsilence_phones.txt").write_text("".join(p + "\n" for p in sorted(ARPABET)))
    (path / "extra_questions.txt").write_text("")


# ---------------------------------------------------------------- driver

def prepare_synth(out_dir: str | os.PathLike, hours: float = 3.0, num_speakers: int | None = None, seed: int = 0,
                  nj: int = 2, snr_db: tuple[float, float] = (5.0, 20.0),
                  rt60: tuple[float, float] = (0.15, 0.4),
                  noise_types: tuple[str, ...] = ("white", "pink", "babble"),
                  progress: bool = True, dev_speakers: int | None = None, test_speakers: int | None = None,
                  eval_utts_per_speaker: int | None = None, generated_test_speakers: int | None = None,
                  generated_utts_per_speaker: int | None = None) -> SynthCorpus:
    """Generate the synthetic corpus into ``out_dir`` (see the module docstring for the layout).

    The speaker counts left at None take :class:`SynthOptions`' defaults.

    Idempotent: if ``out_dir`` holds the completion marker the stored summary is returned.
    ``nj`` worker processes synthesise in parallel; the files do not depend on ``nj``.
    """
    from tqdm import tqdm

    from asrdistill.data.kaldi_dir import write_data_dir
    from asrdistill.data.synth.acoustics import NOISE_TYPES
    from asrdistill.data.synth.grammar import FUNCTION_WORDS, SentenceGenerator
    from asrdistill.lang.arpabet import ARPABET
    from asrdistill.data.synth.vocab import load_word_classes

    out_dir = Path(out_dir).absolute()
    counts = {k: int(v) for k, v in dict(num_speakers=num_speakers, dev_speakers=dev_speakers,
                                          test_speakers=test_speakers,
                                          eval_utts_per_speaker=eval_utts_per_speaker,
                                          generated_test_speakers=generated_test_speakers,
                                          generated_utts_per_speaker=generated_utts_per_speaker).items()
              if v is not None}
    opts = SynthOptions(hours=float(hours), seed=int(seed),
                        snr_db=(float(snr_db[0]), float(snr_db[1])), rt60=(float(rt60[0]), float(rt60[1])),
                        noise_types=tuple(noise_types), **counts)
    if is_done(out_dir, DONE_MARKER) and (out_dir / "summary.json").is_file():
        summary = SynthCorpus(**json.loads((out_dir / "summary.json").read_text()))
        if summary.options != _options_json(opts):
            raise UserFacingError(f"{out_dir} was generated with other options ({summary.options}); remove it "
                                  "or ask for the same options")
        log.info("synthetic corpus already in %s", out_dir)
        return summary
    if hours <= 0:
        raise UserFacingError(f"hours must be positive, got {hours}")
    if not (opts.snr_db[0] <= opts.snr_db[1] and opts.rt60[0] <= opts.rt60[1] and opts.rt60[0] > 0):
        raise UserFacingError(f"bad ranges: snr_db={opts.snr_db} rt60={opts.rt60}")
    bad = [t for t in opts.noise_types if t not in NOISE_TYPES]
    if bad or not opts.noise_types:
        raise UserFacingError(f"unknown noise types {bad}; choose from {', '.join(NOISE_TYPES)}")
    nj = max(1, int(nj))
    t0 = time.time()

    vocab = load_word_classes()
    lexicon, symbols, dropped = build_lexicon(vocab.all_words() | set(FUNCTION_WORDS))
    if dropped:
        log.info("dropped %d words that espeak expands: %s", len(dropped), " ".join(sorted(dropped)))
    if any(w in dropped for w in FUNCTION_WORDS):
        raise RuntimeError(f"grammar words expand in espeak: {sorted(dropped & set(FUNCTION_WORDS))}")
    vocab = vocab.restrict(lambda w: w in lexicon)
    vowel_initial = {w for w, p in lexicon.items() if p and p[0][0] in "AEIOU"}
    generator = SentenceGenerator(vocab, vowel_initial)
    speakers = make_speakers(opts)
    specs = plan_utterances(opts, speakers, generator, lexicon)
    log.info("synthesising %d utterances of %d speakers with %d process(es)", len(specs), len(speakers), nj)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    stack = contextlib.ExitStack()
    try:
        voice_files = generated_voices(opts, speakers)
        espeak_data = stack.enter_context(voices_data_dir(voice_files))
        jobs = [(s, opts, {w: lexicon[w] for w in s.words},
                 str(stage / "wav" / s.split / s.speaker.id / f"{s.utt}.wav"), espeak_data) for s in specs]
        results: dict[str, tuple[list[str], dict]] = {}
        bar = tqdm(total=len(jobs), desc="synth", unit="utt", disable=not progress)
        if nj == 1:
            for job in jobs:
                utt, ctm, info = _render_and_write(job)
                results[utt] = (ctm, info)
                bar.update()
        else:
            # fork: workers inherit the imported modules (scipy.signal alone takes seconds to
            # import); no espeak instance is open here, each utterance loads a fresh one
            import scipy.signal  # noqa: F401

            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            with mp.get_context(method).Pool(nj) as pool:
                for utt, ctm, info in pool.imap_unordered(_render_and_write, jobs, chunksize=8):
                    results[utt] = (ctm, info)
                    bar.update()
        bar.close()
        gen_seconds = time.time() - t0

        seconds = {s: 0.0 for s in SPLITS}
        for spec in specs:
            seconds[spec.split] += results[spec.utt][1]["seconds"]
        for split in SPLITS:
            sp = [s for s in specs if s.split == split]
            write_data_dir(
                stage / "data" / split,
                wav_scp={s.utt: str(out_dir / "wav" / split / s.speaker.id / f"{s.utt}.wav") for s in sp},
                text={s.utt: " ".join(s.words) for s in sp},
                utt2spk={s.utt: s.speaker.id for s in sp},
                spk2gender={s.speaker.id: s.speaker.gender for s in sp},
                extra_files={"phones.ctm": "".join(line + "\n" for s in sp for line in results[s.utt][0])})
        # The lexicon holds what a real system could know: citation forms plus the variants heard in
        # training. Pronunciations spoken only by dev/test speakers stay out of it.
        variants: dict[str, set[str]] = {}
        n_deleted = 0
        for spec in specs:
            if spec.split != "train":
                continue
            for w, pron in zip(spec.words, results[spec.utt][1]["prons"]):
                variants.setdefault(w, set()).add(pron)
                n_deleted += not pron
        if n_deleted:
            log.warning("%d word tokens were spoken with no phone of their own", n_deleted)
        write_dict_dir(stage / "dict", lexicon, variants)
        (stage / "utterances.jsonl").write_text(
            "".join(json.dumps(results[s.utt][1], sort_keys=True) + "\n" for s in specs))
        (stage / "speakers.json").write_text(json.dumps([asdict(s) for s in speakers], indent=2) + "\n")
        for name, text in voice_files.items():  # the generated voices, for the record
            (stage / "voices").mkdir(exist_ok=True)
            (stage / "voices" / name).write_text(text)
        total = sum(seconds.values())
        summary = SynthCorpus(
            out_dir=str(out_dir),
            hours={s: round(v / 3600.0, 4) for s, v in seconds.items()} | {"total": round(total / 3600.0, 4)},
            speakers={split: [s.id for s in speakers if s.split == split] for split in SPLITS},
            utterances={split: sum(1 for s in specs if s.split == split) for split in SPLITS},
            vocabulary_size=len(lexicon),
            phone_count=len(ARPABET),
            espeak_symbols=len({p for ps in symbols.values() for p in ps}),
            snr_db=list(opts.snr_db), rt60=list(opts.rt60), noise_types=list(opts.noise_types),
            generation_seconds=round(gen_seconds, 2),
            real_time_factor=round(total / max(gen_seconds, 1e-9), 1),
            nj=nj, seed=opts.seed, options=_options_json(opts))
        # timing fields differ run to run: keep them out of the byte-compared outputs' content
        write_json_atomic(stage / "summary.json", asdict(summary) | {"out_dir": str(out_dir)})
        mark_done(stage, DONE_MARKER, {"seed": opts.seed})
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(stage, out_dir)
    finally:
        stack.close()
        shutil.rmtree(stage, ignore_errors=True)
    log.info("synthetic corpus: %.2f h (%s) in %.1f s, %.0fx real time", total / 3600,
             ", ".join(f"{k} {v:.3f} h" for k, v in summary.hours.items()), gen_seconds, summary.real_time_factor)
    return summary


def _options_json(opts: SynthOptions) -> dict:
    d = json.loads(json.dumps(asdict(opts)))
    if not opts.generated_test_speakers:  # as corpora made before there were generated voices record them
        del d["generated_test_speakers"], d["generated_utts_per_speaker"]
    return d
