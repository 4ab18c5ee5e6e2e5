"""A corpus summary after feature extraction: hours, speakers, utterances and frames per split, vocabulary
size, phone count, and (for a generated corpus) the noise and reverb ranges from its ``summary.json``."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from asrdistill.lang.lexicon import read_dict_dir
from asrdistill.data.kaldi_dir import read_data_dir


def _audio_seconds(dd) -> float:
    import soundfile

    if dd.segments is not None:
        total = 0.0
        for utt, (rec, start, end) in dd.segments.items():
            if end == -1:
                end = soundfile.info(dd.wav_scp[rec]).duration
            total += end - start
        return total
    return sum(soundfile.info(v).duration for v in dd.wav_scp.values() if not v.endswith("|"))


def summarize_corpus(data: str | os.PathLike, feats: str | os.PathLike | None = None,
                     corpus: str | os.PathLike | None = None,
                     splits: tuple[str, ...] = ("train", "dev", "test")) -> dict[str, Any]:
    data = Path(data)
    out: dict[str, Any] = {"splits": {}}
    for split in splits:
        if not (data / split).is_dir():
            continue
        dd = read_data_dir(data / split, allow_pipes=True, check_audio_exists=False)
        row: dict[str, Any] = {
            "hours": round(_audio_seconds(dd) / 3600, 3),
            "speakers": len(dd.spk2utt),
            "utterances": len(dd),
            "words": sum(len(t.split()) for t in (dd.text or {}).values()),
        }
        if dd.spk2gender:
            row["female_speakers"] = sum(1 for g in dd.spk2gender.values() if g == "f")
        if feats is not None and (Path(feats) / split / "frames.json").is_file():
            meta = json.loads((Path(feats) / split / "frames.json").read_text())
            row["frames"] = int(meta["offsets"][-1])
        out["splits"][split] = row
    if (data / "local" / "dict").is_dir():
        d = read_dict_dir(data / "local" / "dict")
        out["vocabulary"] = len(d.words)
        out["nonsilence_phones"] = len(d.nonsilence_phones)
        out["silence_phones"] = len(d.silence_phones)
    if corpus is not None and (Path(corpus) / "summary.json").is_file():
        gen = json.loads((Path(corpus) / "summary.json").read_text())
        for key in ("snr_db", "rt60", "noise_types", "seed"):
            if key in gen:
                out[key] = gen[key]
    return out


def format_summary(s: dict[str, Any]) -> str:
    lines = ["split   hours  speakers  utterances    words      frames"]
    for name, r in s["splits"].items():
        lines.append(f"{name:<6} {r['hours']:6.2f} {r['speakers']:9d} {r['utterances']:11d} {r['words']:8d} "
                     f"{r.get('frames', 0):11d}")
    extras = [f"{k}: {v}" for k, v in s.items() if k != "splits"]
    return "\n".join(lines + extras)
