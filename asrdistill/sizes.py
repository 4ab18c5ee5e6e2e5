"""Sizes that follow the data: the recipe's model sizes picked from the training hours (``asrdistill suggest-sizes``).

The rule, in the spirit of Kaldi's recipes (their tri1 ... tri5b ``train_deltas.sh``/``train_sat.sh`` calls):

* **tree leaves / Gaussians** of the triphone system: interpolated geometrically in the training hours between
  anchors (:data:`ANCHORS`): 0.1 h 200 / 1000 (this project's flite example, 0.13 h, ran at 200 / 1200), Resource
  Management 3.5 h 1800 / 9000, mini-LibriSpeech 5 h 2000 / 10000, WSJ si84 15 h 2000 / 10000, LibriSpeech
  clean-100 2500 / 15000, LibriSpeech 460 h 4200 / 40000, LibriSpeech 960 h 7000 / 150000; scaled down in
  proportion below 0.1 h and held above 960 h; never more Gaussians than one per 20 training frames (the minimum
  count of Kaldi's mix-up), rounded to two significant digits. WSJ si284 (81 h) uses 4200 / 40000, more than
  this rule gives at 81 h (about 2400 / 14000); recipes with that much read speech per word may set them higher.
* **monophone subset**: all utterances up to 4000 (Kaldi's rm/s5 trains its monophones on all of its 3990);
  above, the 2000 shortest (Kaldi's WSJ and LibriSpeech recipes: ``train_si84_2kshort``, ``train_2kshort``). **monophone Gaussians**: 1000 (Kaldi's ``train_mono.sh``
  default), fewer when that leaves under 40 frames per Gaussian on the monophone subset.
* **DNN preset**: ``tiny`` (2 x 128) below 1 h, ``small`` (3 x 384) below 20 h (the demo's 1.1 h: measured on
  dev, a 2 x 128 student kept under 60% of a 2 x 128 ensemble's gain, 3 x 256 members and student 76-80%, 3 x 384
  84-86%), ``medium``
  (4 x 512) below 200 h, ``paper`` (8 x 2560, the paper's, for a GPU) from 200 h.
* **epochs** (the most; newbob stops earlier when dev accuracy stalls): 10 below 1 h, 6 below 10 h, 4 below
  100 h, 3 from 100 h: small corpora need more passes, big ones fewer.
* **decoding beam / max active**: Kaldi's ``decode.sh`` defaults (13 / 7000) from 15 h (WSJ scale) on; below,
  the demo's 10 / 2000, which keeps decoding fast on the small graphs of small corpora.

Every size stays an option: values the user sets win and are recorded as the user's. Training hours come from
``utt2dur`` when the data dir has it (``make-data-dir`` writes it), else from ``segments``, else from the audio
files' headers (shell pipes in ``wav.scp`` are run for it, with ``allow_pipes``).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

from asrdistill.errors import DataDirError, UserFacingError
from asrdistill.utils import get_logger

log = get_logger(__name__)

FRAMES_PER_HOUR = 360_000  # 10 ms frames
#: (training hours, tree leaves, Gaussians, where the point comes from)
ANCHORS: tuple[tuple[float, int, int, str], ...] = (
    (0.1, 200, 1000, "this project's flite example: 0.13 h ran well at 200 / 1200"),
    (3.5, 1800, 9000, "Kaldi rm/s5 tri1"),
    (5.0, 2000, 10000, "Kaldi mini_librispeech/s5 tri1"),
    (15.0, 2000, 10000, "Kaldi wsj/s5 tri1 (si84)"),
    (100.0, 2500, 15000, "Kaldi librispeech/s5 tri3b (train-clean-100)"),
    (460.0, 4200, 40000, "Kaldi librispeech/s5 tri4b (460 h)"),
    (960.0, 7000, 150000, "Kaldi librispeech/s5 tri5b (960 h)"),
)
MONO_SHORTEST = 2000
MONO_ALL_UP_TO = 4000
MONO_GAUSS = 1000
MIN_FRAMES_PER_GAUSS_MONO = 40
MIN_FRAMES_PER_GAUSS = 20
PRESETS = ((1.0, "tiny"), (20.0, "small"), (200.0, "medium"), (math.inf, "paper"))
EPOCHS = ((1.0, 10), (10.0, 6), (100.0, 4), (math.inf, 3))
SIZE_TYPES = {"mono_subset": int, "mono_gauss": int, "tri_leaves": int, "tri_gauss": int, "preset": str,
              "epochs": int, "beam": float, "max_active": int}
PRESET_NAMES = ("tiny", "small", "medium", "paper")


@dataclass
class DataStats:
    """The training data as the rule sees it; ``durations`` source: utt2dur, segments or audio."""

    utterances: int
    speakers: int
    hours: float
    duration_source: str
    mono_subset_hours: float = 0.0


@dataclass
class SizeChoice:
    """Chosen sizes, why, and who chose each (``rule`` or ``user``)."""

    data: DataStats
    sizes: dict[str, object]
    reasons: dict[str, str]
    chosen_by: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"data": asdict(self.data), "sizes": self.sizes, "reasons": self.reasons,
                "chosen_by": self.chosen_by, "rule": "asrdistill.sizes (see its docstring)"}

    def recipe_options(self) -> str:
        """``--tri-leaves 1100 --tri-gauss 5600 ...``: the sizes as options of recipes/synth/run.sh."""
        return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in self.sizes.items())

    def table(self) -> str:
        d = self.data
        lines = [f"training data: {d.hours:.3f} h, {d.utterances} utterances, {d.speakers} speakers "
                 f"(durations from {d.duration_source})"]
        for k, v in self.sizes.items():
            lines.append(f"  {k:12s} {v!s:8s} {self.chosen_by[k]}: {self.reasons[k]}")
        return "\n".join(lines)


def utterance_durations(data_dir: str | os.PathLike, allow_pipes: bool = False) -> tuple[dict[str, float], str]:
    """Seconds per utterance of a data dir, and where they came from (utt2dur, segments or audio)."""
    from asrdistill.data.kaldi_dir import load_utterance_audio, read_data_dir

    path = Path(data_dir)
    dd = read_data_dir(path, allow_pipes=allow_pipes, require_text=False)
    if (path / "utt2dur").is_file():
        durs = {}
        for lineno, line in enumerate((path / "utt2dur").read_text().splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            try:
                durs[fields[0]] = float(fields[1])
            except (IndexError, ValueError):
                raise DataDirError(str(path / "utt2dur"), lineno, "expected 'UTT SECONDS'", fields[0]) from None
        missing = [u for u in dd.utts if u not in durs]
        if missing:
            raise DataDirError(str(path / "utt2dur"), None, f"{len(missing)} utterance(s) have no duration",
                               missing[0])
        return {u: durs[u] for u in dd.utts}, "utt2dur"
    if dd.segments is not None and all(e != -1 for _, _, e in dd.segments.values()):
        return {u: e - s for u, (_, s, e) in dd.segments.items()}, "segments"
    import soundfile

    durs = {}
    for u in dd.utts:
        value = dd.wav_scp[dd.recording_of(u)]
        if dd.segments is None and not value.endswith("|"):
            info = soundfile.info(value)
            durs[u] = info.frames / info.samplerate
        else:
            samples, rate = load_utterance_audio(dd, u)
            durs[u] = len(samples) / rate
    return durs, "audio (write utt2dur to skip reading it)"


def data_stats(data_dir: str | os.PathLike, allow_pipes: bool = False) -> tuple[DataStats, dict[str, float]]:
    from asrdistill.data.kaldi_dir import read_data_dir

    durs, source = utterance_durations(data_dir, allow_pipes)
    dd = read_data_dir(data_dir, allow_pipes=allow_pipes, require_text=False)
    return DataStats(len(durs), len(dd.spk2utt), round(sum(durs.values()) / 3600, 4), source), durs


def _sig2(x: float) -> int:
    """Round to two significant digits."""
    if x <= 0:
        return 0
    e = 10 ** max(0, int(math.floor(math.log10(x))) - 1)
    return int(round(x / e) * e)


def tree_sizes(hours: float) -> tuple[float, float, str]:
    """(leaves, Gaussians, explanation) of the triphone system at ``hours`` of training data, unrounded."""
    first, last = ANCHORS[0], ANCHORS[-1]
    if hours <= first[0]:
        f = hours / first[0]
        return first[1] * f, first[2] * f, f"{first[1]} / {first[2]} at {first[0]} h ({first[3]}), scaled to {hours:.3g} h"
    if hours >= last[0]:
        return last[1], last[2], f"held at {last[1]} / {last[2]} ({last[3]})"
    for lo, hi in zip(ANCHORS, ANCHORS[1:]):
        if lo[0] <= hours <= hi[0]:
            t = math.log(hours / lo[0]) / math.log(hi[0] / lo[0])
            leaves = lo[1] * (hi[1] / lo[1]) ** t
            gauss = lo[2] * (hi[2] / lo[2]) ** t
            return leaves, gauss, (f"{hours:.3g} h lies between {lo[0]} h: {lo[1]} / {lo[2]} ({lo[3]}) and "
                                   f"{hi[0]} h: {hi[1]} / {hi[2]} ({hi[3]}); geometric interpolation")
    raise AssertionError("unreachable")


def suggest_sizes(stats: DataStats, durations: Mapping[str, float] | None = None,
                  user: Mapping[str, str] | None = None) -> SizeChoice:
    """The sizes for ``stats`` (see the module docstring); ``user`` values (as typed) win."""
    h = stats.hours
    frames = h * FRAMES_PER_HOUR
    sizes: dict[str, object] = {}
    why: dict[str, str] = {}
    if stats.utterances <= MONO_ALL_UP_TO:
        sizes["mono_subset"] = 0
        mono_frames = frames
        why["mono_subset"] = (f"all {stats.utterances} utterances (up to {MONO_ALL_UP_TO}, as Kaldi's rm/s5; "
                              f"above, the {MONO_SHORTEST} shortest)")
    else:
        sizes["mono_subset"] = MONO_SHORTEST
        shortest = sorted(durations.values())[:MONO_SHORTEST] if durations else []
        mono_frames = sum(shortest) * 100 if shortest else frames * MONO_SHORTEST / stats.utterances
        why["mono_subset"] = (f"the {MONO_SHORTEST} shortest of {stats.utterances} utterances, as Kaldi's WSJ and "
                              "LibriSpeech recipes (train_si84_2kshort, train_2kshort)")
    mono_cap = int(mono_frames // MIN_FRAMES_PER_GAUSS_MONO)
    if mono_cap < MONO_GAUSS:
        sizes["mono_gauss"] = max(_sig2(mono_cap), 50)
        why["mono_gauss"] = (f"{MIN_FRAMES_PER_GAUSS_MONO} frames per Gaussian on the monophone data "
                             f"({mono_frames:.0f} frames; Kaldi's train_mono.sh default is {MONO_GAUSS})")
    else:
        sizes["mono_gauss"] = MONO_GAUSS
        why["mono_gauss"] = f"Kaldi's train_mono.sh default ({mono_frames:.0f} frames of monophone data)"
    leaves, gauss, how = tree_sizes(h)
    cap = frames / MIN_FRAMES_PER_GAUSS
    capped = gauss > cap
    gauss = min(gauss, cap)
    sizes["tri_leaves"] = max(_sig2(leaves), 20)
    sizes["tri_gauss"] = max(_sig2(gauss), 2 * int(sizes["tri_leaves"]))
    why["tri_leaves"] = how
    why["tri_gauss"] = how + (f"; capped at one Gaussian per {MIN_FRAMES_PER_GAUSS} frames ({frames:.0f} frames)"
                              if capped else "")
    preset = next(name for limit, name in PRESETS if h < limit)
    sizes["preset"] = preset
    why["preset"] = ("tiny below 1 h, small below 20 h, medium below 200 h, paper (8 x 2560, for a GPU) from 200 h"
                     f"; {h:.3g} h")
    sizes["epochs"] = next(n for limit, n in EPOCHS if h < limit)
    why["epochs"] = f"10 below 1 h, 6 below 10 h, 4 below 100 h, 3 from 100 h; {h:.3g} h"
    big = h >= 15
    sizes["beam"] = 13 if big else 10
    sizes["max_active"] = 7000 if big else 2000
    why["beam"] = why["max_active"] = ("Kaldi's decode.sh defaults (13 / 7000) from 15 h; below, the demo's "
                                       f"10 / 2000 for small graphs; {h:.3g} h")
    chosen_by = {k: "rule" for k in sizes}
    for name, value in (user or {}).items():
        if name not in SIZE_TYPES:
            raise UserFacingError(f"unknown size {name!r}; sizes are {', '.join(SIZE_TYPES)}")
        try:
            typed = SIZE_TYPES[name](value)
        except ValueError:
            raise UserFacingError(f"size {name}={value!r} is not a {SIZE_TYPES[name].__name__}") from None
        if name == "preset" and typed not in PRESET_NAMES:
            raise UserFacingError(f"preset {typed!r} is not one of {', '.join(PRESET_NAMES)}")
        sizes[name] = typed
        chosen_by[name] = "user"
        why[name] = "set by the user"
    for k in ("beam",):
        if isinstance(sizes[k], float) and float(sizes[k]).is_integer():
            sizes[k] = int(sizes[k])
    return SizeChoice(stats, sizes, why, chosen_by)
