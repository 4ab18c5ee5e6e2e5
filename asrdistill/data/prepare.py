"""Stage 1 of every recipe: validate the data dirs and the dict dir and copy them into the recipe's ``data/``.

Any corpus enters the toolkit here: the built-in synthetic one, or a user's own Kaldi data dirs and dict dir.
Every recording is opened (its header: readable, non-empty, not truncated, one sample rate per split; of
``cmd |`` entries only the first is run), and :func:`check_sample_rates` refuses splits whose rate differs
from the first split's (the training data's): a model trained on 16 kHz fbank is meaningless on 8 kHz audio.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from asrdistill.lang.lexicon import check_transcripts, read_dict_dir
from asrdistill.data.kaldi_dir import copy_data_dir, read_data_dir
from asrdistill.errors import UserFacingError
from asrdistill.utils import get_logger

log = get_logger(__name__)

# Files beside the Kaldi ones that later stages use when present (ground-truth phone times of the synth corpus).
EXTRA_FILES = ("phones.ctm",)


@dataclass
class SplitInfo:
    name: str
    utterances: int
    speakers: int
    words: int
    oov_words: int
    sample_rate: int | None = None


def prepare_split(name: str, src: str | os.PathLike, dictionary, dest: str | os.PathLike,
                  allow_pipes: bool = False, expect_rate: tuple[str, int] | None = None) -> SplitInfo:
    """Validate the data dir ``src`` against ``dictionary`` (a read dict dir) and copy it to ``dest``.

    ``expect_rate``: (split name, sample rate) that this split must match (checked before anything is copied)."""
    from asrdistill.data.kaldi_dir import check_audio

    dd = read_data_dir(src, allow_pipes=allow_pipes)
    rate = check_audio(dd, pipes="first", check_channels=False)
    if expect_rate is not None and rate is not None:
        check_sample_rates({expect_rate[0]: (expect_rate[1], "")} | {name: (rate, str(src))})
    oov = check_transcripts(dictionary, dd.text or {}, str(dd.path / "text"))
    words = sum(len(t.split()) for t in (dd.text or {}).values())
    if oov:
        top = sorted(oov.items(), key=lambda kv: -kv[1])[:10]
        log.warning("%s: %d of %d words are not in the lexicon and map to <UNK>; most frequent: %s",
                    src, sum(oov.values()), words, top)
    info = SplitInfo(name, len(dd), len(dd.spk2utt), words, sum(oov.values()), rate)
    copy_data_dir(dd, dest, extra_files=EXTRA_FILES)
    log.info("%s: %d utterances, %d speakers -> %s", src, info.utterances, info.speakers, dest)
    return info


def prepared_sample_rate(dest: str | os.PathLike, allow_pipes: bool = False) -> int | None:
    """The sample rate of a split prepared earlier: from its completion record, else from its audio."""
    from asrdistill.data.kaldi_dir import check_audio
    from asrdistill.experiment.fingerprint import read_record

    rate = ((read_record(dest) or {}).get("info") or {}).get("sample_rate")
    if rate is not None:
        return int(rate)
    return check_audio(read_data_dir(dest, allow_pipes=allow_pipes), pipes="first", check_channels=False)


def check_sample_rates(rates: dict[str, tuple[int | None, str]]) -> None:
    """Refuse splits sampled at another rate than the first one (the training data): ``rates`` maps a split
    name to (sample rate, its source dir), in order; None rates (nothing opened) are not compared."""
    known = [(name, rate, src) for name, (rate, src) in rates.items() if rate is not None]
    if not known:
        return
    first, first_rate, _ = known[0]
    for name, rate, src in known[1:]:
        if rate != first_rate:
            raise UserFacingError(
                f"{src or name}: split {name} is sampled at {rate} Hz but split {first} at {first_rate} Hz; every "
                f"split must have the training data's sample rate (resample it to {first_rate} Hz, e.g. with "
                f"'sox IN.wav -r {first_rate} OUT.wav' or a wav.scp entry 'sox IN.wav -r {first_rate} -t wav - |')")


def read_dictionary(dict_dir: str | os.PathLike):
    """The dict dir, validated, with a log line of its size."""
    dictionary = read_dict_dir(dict_dir)
    log.info("dict %s: %d lexicon entries, %d words, %d silence + %d nonsilence phones", dict_dir,
             len(dictionary.lexicon), len(dictionary.words), len(dictionary.silence_phones),
             len(dictionary.nonsilence_phones))
    return dictionary
