"""Kaldi data dirs from a folder of audio files and transcript lists (``asrdistill make-data-dir``).

Input:

* one or more folders searched recursively for ``*.wav`` and ``*.flac`` (any case); a file's *id* is its name
  without the extension, so ids must be unique across the folders and free of whitespace;
* transcript files, one utterance a line: ``ID word word ...`` (an ``ID`` may carry the audio extension), given
  as files and/or as a glob searched in the audio folders (LibriSpeech: ``*.trans.txt``);
* the speaker of each file: a regular expression (``--speaker-pattern``) whose group ``spk`` (or first group,
  or whole match) is the speaker, searched in the id (or, when the pattern contains ``/``, in the path relative
  to its audio folder, without the extension); or a map file of ``ID SPEAKER`` lines; or one speaker per file.

Output: ``wav.scp`` (absolute paths), ``text``, ``utt2spk``, ``spk2utt`` and ``utt2dur`` (seconds, from the file
headers), validated as Kaldi's ``utils/validate_data_dir.sh`` would. Utterance ids are the file ids, prefixed
with ``SPEAKER-`` where they do not already start with the speaker (Kaldi's sorting rule). With ``splits``
(``{"train": 0.8, "dev": 0.1, "test": 0.1}``) it writes one data dir per split under ``out``: speaker-disjoint
when every split gets at least two speakers at its fraction (``split_by="auto"``; or ``"speaker"``), otherwise
each speaker's utterances are shared out at the fractions (``"utterance"``); the draw is seeded. All files must
share one sample rate and be mono. Nothing is written unless everything checks out.

``normalize_text`` upper-cases the transcripts and strips punctuation around words (apostrophes and hyphens
inside a word stay), as Kaldi's English corpora are written.
"""
from __future__ import annotations

import glob
import hashlib
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from asrdistill.errors import DataDirError, UserFacingError
from asrdistill.utils import JsonConfig, atomic_path, get_logger, write_json_atomic

log = get_logger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac")
SPLIT_BY = ("auto", "speaker", "utterance")
MIN_SPEAKERS_PER_SPLIT = 2


@dataclass
class MakeDataDirConfig(JsonConfig):
    """How ids, speakers, transcripts and splits are made (see the module docstring)."""

    speaker_pattern: str | None = None
    speaker_per_utterance: bool = False
    normalize_text: bool = False
    splits: dict[str, float] = field(default_factory=dict)
    split_by: str = "auto"
    seed: int = 0
    transcript_glob: str | None = None

    def __post_init__(self) -> None:
        if self.split_by not in SPLIT_BY:
            raise UserFacingError(f"split_by must be one of {', '.join(SPLIT_BY)}, got {self.split_by!r}")
        if self.splits:
            bad = {k: v for k, v in self.splits.items() if not 0 < v <= 1}
            if bad or abs(sum(self.splits.values()) - 1) > 1e-6:
                raise UserFacingError(f"split fractions must be in (0, 1] and add up to 1, got {self.splits}")
        if self.speaker_pattern is not None:
            try:
                re.compile(self.speaker_pattern)
            except re.error as err:
                raise UserFacingError(f"--speaker-pattern {self.speaker_pattern!r}: {err}") from None


@dataclass
class SplitInfo:
    name: str
    utterances: int
    speakers: int
    hours: float


@dataclass
class MakeDataDirInfo:
    sample_rate: int
    split_by: str | None
    splits: list[SplitInfo]
    renamed: int  # utterance ids that got a speaker prefix


@dataclass
class _Audio:
    id: str
    path: Path
    rel: str  # relative to its folder, without extension
    seconds: float = 0.0


def find_audio(folders: Sequence[str | os.PathLike]) -> dict[str, _Audio]:
    """``id -> audio file`` of every WAV/FLAC file under ``folders`` (sorted walk; duplicate ids are errors)."""
    found: dict[str, _Audio] = {}
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise UserFacingError(f"{root}: audio folder not found")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                stem, ext = os.path.splitext(name)
                if ext.lower() not in AUDIO_EXTENSIONS:
                    continue
                path = Path(dirpath, name).absolute()
                if not stem or any(c.isspace() for c in stem):
                    raise UserFacingError(f"{path}: a file name (the utterance id) must not contain whitespace")
                if stem in found:
                    raise UserFacingError(f"two audio files have the id {stem!r}: {found[stem].path} and {path}")
                rel = str(Path(dirpath, stem).relative_to(root))
                found[stem] = _Audio(stem, path, rel)
    if not found:
        raise UserFacingError(f"no .wav or .flac files under {', '.join(map(str, folders))}")
    return found


def audio_listing_digest(audio: dict[str, _Audio]) -> str:
    """A digest of the audio files' paths, sizes and modification times (not their contents: corpora are big)."""
    h = hashlib.sha256()
    for a in sorted(audio.values(), key=lambda a: str(a.path)):
        st = a.path.stat()
        h.update(f"{a.path}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def normalize(text: str) -> str:
    """Upper case; punctuation stripped around words (inner ``'`` and ``-`` kept); empty tokens dropped."""
    words = []
    for tok in text.upper().split():
        tok = re.sub(r"^[^\w]+|[^\w]+$", "", tok)
        tok = re.sub(r"[^\w'\-.]", "", tok)
        if tok:
            words.append(tok)
    return " ".join(words)


def read_transcripts(files: Sequence[str | os.PathLike], normalize_text: bool) -> dict[str, tuple[str, str, int]]:
    """``id -> (text, file, line)``; an id given twice is an error."""
    out: dict[str, tuple[str, str, int]] = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.strip().split(maxsplit=1)
                if not fields:
                    continue
                uid = fields[0]
                stem, ext = os.path.splitext(uid)
                if ext.lower() in AUDIO_EXTENSIONS:
                    uid = stem
                text = fields[1] if len(fields) > 1 else ""
                if normalize_text:
                    text = normalize(text)
                if uid in out:
                    raise DataDirError(str(path), lineno, f"id {uid!r} already has a transcript "
                                                          f"({out[uid][1]}:{out[uid][2]})", uid)
                out[uid] = (" ".join(text.split()), str(path), lineno)
    return out


def _speakers(audio: dict[str, _Audio], config: MakeDataDirConfig, speaker_map: str | None) -> dict[str, str]:
    if sum([config.speaker_pattern is not None, speaker_map is not None, config.speaker_per_utterance]) != 1:
        raise UserFacingError("say how to find each file's speaker: exactly one of --speaker-pattern REGEX, "
                              "--speaker-map FILE, --speaker-per-utterance")
    spk: dict[str, str] = {}
    if config.speaker_per_utterance:
        return {i: i for i in audio}
    if speaker_map is not None:
        with open(speaker_map, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2:
                    raise DataDirError(speaker_map, lineno, "expected 'ID SPEAKER'")
                spk[os.path.splitext(fields[0])[0] if os.path.splitext(fields[0])[1].lower() in AUDIO_EXTENSIONS
                    else fields[0]] = fields[1]
        missing = [i for i in audio if i not in spk]
        if missing:
            raise DataDirError(speaker_map, None, f"{len(missing)} audio file(s) have no speaker, e.g. "
                                                  f"{', '.join(missing[:3])}")
        return {i: spk[i] for i in audio}
    pattern = re.compile(config.speaker_pattern)
    on_path = "/" in config.speaker_pattern
    for i, a in audio.items():
        subject = a.rel if on_path else i
        m = pattern.search(subject)
        if not m:
            raise UserFacingError(f"--speaker-pattern {config.speaker_pattern!r} does not match {subject!r} "
                                  f"({a.path})")
        s = m.group("spk") if "spk" in pattern.groupindex else m.group(1) if pattern.groups else m.group(0)
        if not s or any(c.isspace() for c in s):
            raise UserFacingError(f"--speaker-pattern gives the speaker {s!r} for {subject!r}: empty or with spaces")
        spk[i] = s
    return spk


def _check_audio(audio: dict[str, _Audio]) -> int:
    """Read each file's header: one sample rate for all, mono; sets ``seconds``. Returns the rate."""
    import soundfile

    rates: dict[int, str] = {}
    for a in audio.values():
        try:
            info = soundfile.info(str(a.path))
        except (RuntimeError, soundfile.LibsndfileError) as err:
            raise UserFacingError(f"{a.path}: cannot read the audio header ({err})") from None
        if info.channels != 1:
            raise UserFacingError(f"{a.path}: {info.channels} channels; the recipes need mono audio (e.g. "
                                  f"sox IN -c 1 OUT, or remix the channel you want)")
        rates.setdefault(int(info.samplerate), str(a.path))
        a.seconds = info.frames / info.samplerate
    if len(rates) > 1:
        raise UserFacingError("the audio files have different sample rates (" + "; ".join(
            f"{r} Hz, e.g. {p}" for r, p in sorted(rates.items())) + "): resample them to one rate")
    return next(iter(rates))


def _largest_remainder(n: int, fractions: dict[str, float]) -> dict[str, int]:
    raw = {k: f * n for k, f in fractions.items()}
    counts = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: (counts[k] - raw[k], list(raw).index(k)))[:n - sum(counts.values())]:
        counts[k] += 1
    return counts


def _assign_splits(utt2spk: dict[str, str], config: MakeDataDirConfig) -> tuple[dict[str, str], str]:
    """``utt -> split name`` and the split mode used."""
    rng = random.Random(config.seed)
    spks = sorted(set(utt2spk.values()), key=lambda s: s.encode())
    mode = config.split_by
    if mode == "auto":
        enough = all(f * len(spks) >= MIN_SPEAKERS_PER_SPLIT for f in config.splits.values())
        mode = "speaker" if enough else "utterance"
    out: dict[str, str] = {}
    if mode == "speaker":
        counts = _largest_remainder(len(spks), config.splits)
        if any(c == 0 for c in counts.values()):
            raise UserFacingError(f"{len(spks)} speakers cannot be split speaker-disjoint at {config.splits}: use "
                                  "--split-by utterance")
        order = spks[:]
        rng.shuffle(order)
        spk_split, i = {}, 0
        for name, c in counts.items():
            for s in order[i:i + c]:
                spk_split[s] = name
            i += c
        return {u: spk_split[s] for u, s in utt2spk.items()}, mode
    by_spk: dict[str, list[str]] = {}
    for u in sorted(utt2spk, key=lambda s: s.encode()):
        by_spk.setdefault(utt2spk[u], []).append(u)
    for s in spks:
        utts = by_spk[s]
        rng.shuffle(utts)
        i = 0
        for name, c in _largest_remainder(len(utts), config.splits).items():
            for u in utts[i:i + c]:
                out[u] = name
            i += c
    return out, mode


def make_data_dir(audio_folders: Sequence[str | os.PathLike], out: str | os.PathLike,
                  transcripts: Sequence[str | os.PathLike] = (), config: MakeDataDirConfig | None = None,
                  speaker_map: str | None = None) -> MakeDataDirInfo:
    """Write the Kaldi data dir(s) of ``audio_folders`` at ``out`` (see the module docstring)."""
    from asrdistill.data.kaldi_dir import read_data_dir, write_data_dir

    config = config or MakeDataDirConfig()
    audio = find_audio(audio_folders)
    files = [str(p) for p in transcripts]
    if config.transcript_glob:
        for folder in audio_folders:
            files += sorted(glob.glob(os.path.join(glob.escape(str(folder)), "**", config.transcript_glob),
                                      recursive=True))
    if not files:
        raise UserFacingError("no transcript files: give --transcripts FILE... or --transcript-glob PATTERN")
    text = read_transcripts(files, config.normalize_text)
    no_text = [i for i in audio if i not in text]
    no_audio = [i for i in text if i not in audio]
    if no_text:
        raise UserFacingError(f"{len(no_text)} audio file(s) have no transcript line, e.g. "
                              f"{', '.join(str(audio[i].path) for i in no_text[:3])}")
    if no_audio:
        raise DataDirError(text[no_audio[0]][1], text[no_audio[0]][2],
                           f"{len(no_audio)} transcript(s) have no audio file, e.g. {', '.join(no_audio[:3])}",
                           no_audio[0])
    spk = _speakers(audio, config, speaker_map)
    rate = _check_audio(audio)
    utt_of = {i: (i if i.startswith(spk[i]) else f"{spk[i]}-{i}") for i in audio}
    renamed = sum(1 for i in audio if utt_of[i] != i)
    utt2spk = {utt_of[i]: spk[i] for i in audio}
    if config.splits:
        split_of, mode = _assign_splits(utt2spk, config)
    else:
        split_of, mode = {u: "" for u in utt2spk}, None
    out = Path(out)
    infos = []
    with atomic_path(out) as tmp:
        for name in (config.splits or {"": 1.0}):
            ids = [i for i in audio if split_of[utt_of[i]] == name]
            if not ids:
                raise UserFacingError(f"split {name!r} gets no utterance: change the fractions")
            d = tmp / name if name else tmp
            write_data_dir(d, {utt_of[i]: str(audio[i].path) for i in ids}, {utt_of[i]: text[i][0] for i in ids},
                           {utt_of[i]: spk[i] for i in ids},
                           extra_files={"utt2dur": "".join(f"{u} {s:.3f}\n" for u, s in sorted(
                               ((utt_of[i], audio[i].seconds) for i in ids), key=lambda x: x[0].encode()))})
            try:
                read_data_dir(d)
            except DataDirError as err:
                raise UserFacingError(f"the data dir made from these files is not valid: {err}") from None
            infos.append(SplitInfo(name or out.name, len(ids), len({spk[i] for i in ids}),
                                   round(sum(audio[i].seconds for i in ids) / 3600, 4)))
        if config.splits:
            from dataclasses import asdict

            write_json_atomic(tmp / "make_data_dir.json", {"sample_rate": rate, "split_by": mode,
                                                          "splits": [asdict(s) for s in infos]})
    return MakeDataDirInfo(rate, mode, infos, renamed)
