"""WAV files -> words with an export dir: fbank + per-utterance CMVN, the exported network, HCLG decoding.

The search is :func:`asrdistill.decode.decoder.decode` (Kaldi's LatticeFasterDecoder, best path) over the
export's ``HCLG.fst`` / ``words.txt`` with its transition model and acoustic scale; the network runs in this
process while ``nj`` worker processes decode. A WAV file has no speaker, so CMVN uses each file's own
statistics where training used per-speaker ones (said once in the log).

:func:`compare_with_decode` is the integration check of a trained system: it transcribes utterances of a
data dir with the export and compares the words with the recipe's decode of the same utterances.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from asrdistill.errors import UserFacingError
from asrdistill.export.runtime import ExportedModel
from asrdistill.utils import get_logger

log = get_logger(__name__)

CMVN_NOTE = ("using utterance-level CMVN: a file has no speaker statistics (training used {training} CMVN, "
             "norm_vars={norm_vars})")


def _channel_error(path: Path, channels: int, channel: int | None) -> UserFacingError:
    if channel is None:
        return UserFacingError(f"{path}: {channels} channels; choose one with --channel N (0 = the first)")
    return UserFacingError(f"{path}: {channels} channels; --channel {channel} does not exist")


def read_wav(path: str | os.PathLike, channel: int | None = None) -> tuple[np.ndarray, int]:
    """Samples (float32 at int16 scale, as Kaldi reads WAV) and the sample rate. ``channel``: the channel
    (0-based) of a multichannel file; None makes one an error naming it. A mono file is used as it is."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"{path}: no such audio file")
    try:
        samples, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as err:
        raise UserFacingError(f"{path}: cannot read audio: {err}") from None
    channels = samples.shape[1]
    if channels != 1 and (channel is None or not 0 <= channel < channels):
        raise _channel_error(path, channels, channel)
    return samples[:, 0 if channels == 1 else channel].astype(np.float32), int(rate)


def _audio_info(path: Path, channel: int | None = None) -> tuple[int, int]:
    """(number of samples, sample rate) without reading the samples; the channel checked as in :func:`read_wav`."""
    import soundfile

    if not path.is_file():
        raise UserFacingError(f"{path}: no such audio file")
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, OSError) as err:
        raise UserFacingError(f"{path}: cannot read audio: {err}") from None
    channels = int(info.channels)
    if channels != 1 and (channel is None or not 0 <= channel < channels):
        raise _channel_error(path, channels, channel)
    return int(info.frames), int(info.samplerate)


class Transcriber:
    """An export dir loaded for decoding: network, transition model and decoding options.

    Decoding options (beam, max_active, min_active, lattice_beam) default to the export's
    ``decode_options``, then to :class:`~asrdistill.decode.decoder.DecodeOptions`; the acoustic scale to
    the export's.
    """

    def __init__(self, export_dir: str | os.PathLike, backend: str = "torch", beam: float | None = None,
                 max_active: int | None = None, acoustic_scale: float | None = None, nj: int = 1,
                 verify: bool = True, progress: bool = False, num_threads: int | None = None,
                 channel: int | None = None):
        from asrdistill.decode.decoder import DecodeOptions

        self.model = ExportedModel(export_dir, backend=backend, verify=verify, num_threads=num_threads)
        if not self.model.has_graph:
            raise UserFacingError(f"{export_dir}: this export has no decoding graph / transition model "
                                  f"(export it with --graph and --trans-model to transcribe)")
        self.trans_model = self.model.load_trans_model()
        names = {f.name for f in dataclasses.fields(DecodeOptions)}
        opts: dict[str, Any] = {k: v for k, v in self.model.manifest.get("decode_options", {}).items() if k in names}
        opts["acoustic_scale"] = self.model.acoustic_scale
        for key, value in (("beam", beam), ("max_active", max_active), ("acoustic_scale", acoustic_scale)):
            if value is not None:
                opts[key] = value
        self.options = DecodeOptions(**opts)
        self.nj = max(1, int(nj))
        self.progress = progress
        self.channel = channel
        self._told_cmvn = False

    def _tell_cmvn(self) -> None:
        if not self._told_cmvn:
            log.warning(CMVN_NOTE.format(training=self.model.cmvn.get("training", "per-speaker"),
                                         norm_vars=self.model.norm_vars))
            self._told_cmvn = True

    def decode(self, keys: Sequence[str], loglikes: Callable[[str], np.ndarray] | Mapping[str, np.ndarray]
               ) -> dict[str, str]:
        """Words (space-separated) of each key, from its [T, num_pdfs] log-likelihoods."""
        from asrdistill.decode.decoder import decode

        if not keys:
            return {}
        result = decode(self.model.path, self.trans_model, loglikes, list(keys), self.options, nj=self.nj,
                        progress=self.progress)[0]
        return result.text()

    def transcribe_files(self, paths: Sequence[str | os.PathLike]) -> list[tuple[str, str]]:
        """(path, words) per file, in the order given (a file named twice is decoded once)."""
        paths = [Path(p) for p in paths]
        want = self.model.sample_rate
        keys: list[str] = []
        for p in dict.fromkeys(paths):  # check every file before the slow part
            num_samples, rate = _audio_info(p, self.channel)
            if want is not None and rate != want:
                raise UserFacingError(f"{p}: sampled at {rate} Hz, but the model in {self.model.path} was trained "
                                      f"on {want} Hz audio (fbank.json); resample it to {want} Hz first")
            if self.model.fbank_config.num_frames(num_samples, rate) == 0:
                log.warning("%s: too short for one frame (%d samples); no words", p, num_samples)
                continue
            keys.append(str(p))
        self._tell_cmvn()

        def loglikes(key: str) -> np.ndarray:
            samples, rate = read_wav(key, self.channel)
            return self.model.score(samples, rate)

        text = self.decode(keys, loglikes)
        return [(str(p), text.get(str(p), "")) for p in paths]


def transcribe(export_dir: str | os.PathLike, wav_paths: Sequence[str | os.PathLike], backend: str = "torch",
               beam: float | None = None, nj: int = 1, acoustic_scale: float | None = None,
               max_active: int | None = None, progress: bool = False,
               channel: int | None = None) -> list[tuple[str, str]]:
    """Transcribe WAV files with an export dir: ``[(path, "word word ..."), ...]`` in the order given."""
    t = Transcriber(export_dir, backend=backend, beam=beam, max_active=max_active, acoustic_scale=acoustic_scale,
                    nj=nj, progress=progress, channel=channel)
    return t.transcribe_files(wav_paths)


def compare_with_decode(export_dir: str | os.PathLike, data_dir: str | os.PathLike,
                        decode_text: str | os.PathLike, utts: Sequence[str] | None = None,
                        feat_dir: str | os.PathLike | None = None, backend: str = "torch",
                        beam: float | None = None, acoustic_scale: float | None = None,
                        nj: int = 1, allow_pipes: bool = False, channel: int | None = None) -> dict[str, Any]:
    """Transcribe utterances of ``data_dir`` with the export and compare with the recipe's decode of them.

    ``decode_text``: the decode dir's ``text`` (or the decode dir). ``utts`` default to every utterance
    in it. With ``feat_dir`` (the split's feature dir, holding ``cmvn.scp``) the speakers' CMVN stats are
    used, as in the recipe, so the words should be identical; without it CMVN is per utterance (what
    ``asrdistill transcribe`` does), and small differences are expected. Use the decode's acoustic scale
    and beam. Returns ``{"utterances", "identical", "fraction_identical", "cmvn", "mismatches": [...]}``.
    ``allow_pipes``: run ``cmd |`` entries of the data dir's wav.scp. The feature dir's ``cmvn.scp`` is the
    toolkit's own, so a command in it is refused whatever ``allow_pipes`` says.
    """
    from asrdistill.data.kaldi_dir import load_utterance_audio, read_data_dir
    from asrdistill.decode.score import read_text

    decode_text = Path(decode_text)
    if decode_text.is_dir():
        decode_text = decode_text / "text"
    hyps = read_text(decode_text)
    dd = read_data_dir(data_dir, allow_pipes=allow_pipes)
    utts = sorted(hyps) if utts is None else list(utts)
    missing = [u for u in utts if u not in hyps or u not in dd.utt2spk]
    if missing:
        raise UserFacingError(f"utterance {missing[0]}: not in both {decode_text} and {data_dir}")
    t = Transcriber(export_dir, backend=backend, beam=beam, acoustic_scale=acoustic_scale, nj=nj)
    spk_stats = None
    if feat_dir is not None:
        from asrdistill.kaldi_tables import read_matrix_table

        scp = Path(feat_dir) / "cmvn.scp"
        if not scp.is_file():
            raise UserFacingError(f"{scp}: not found (speaker CMVN stats of the feature dir)")
        table = read_matrix_table(scp, allow_pipes=False, dtype=np.float64)
        missing = sorted(spk for spk in {dd.utt2spk[u] for u in utts} if spk not in table)
        if missing:
            raise UserFacingError(f"{scp}: no CMVN stats for speaker {missing[0]} of {data_dir}")
        spk_stats = {spk: table[spk] for spk in {dd.utt2spk[u] for u in utts}}

    def loglikes(utt: str) -> np.ndarray:
        samples, rate = load_utterance_audio(dd, utt, channel)
        stats = spk_stats[dd.utt2spk[utt]] if spk_stats is not None else None
        return t.model.log_likelihoods(t.model.features(samples, rate, cmvn_stats=stats))

    text = t.decode(utts, loglikes)
    mismatches = [{"utt": u, "transcribe": text.get(u, ""), "decode": " ".join(hyps[u].split())}
                  for u in utts if " ".join(text.get(u, "").split()) != " ".join(hyps[u].split())]
    same = len(utts) - len(mismatches)
    return {"utterances": len(utts), "identical": same, "fraction_identical": same / len(utts) if utts else 1.0,
            "cmvn": "per-speaker" if feat_dir is not None else "per-utterance", "mismatches": mismatches}
