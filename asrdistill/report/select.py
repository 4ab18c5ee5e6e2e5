"""Choose one of several trained models by dev frame accuracy (never by test)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from asrdistill.errors import UserFacingError


def choose_best(model_dirs: Sequence[str | os.PathLike], dev_feats: str | os.PathLike,
                dev_ali: str | os.PathLike, device: str = "auto") -> dict:
    """Score each ``<dir>/final.mdl`` on the dev set; the highest frame accuracy wins (ties: lower CE).

    Returns ``{"scores": {dir: {...}}, "best": dir, "best_temperature": T or None}``; T is read from the
    winner's ``distill.json`` when it is a distilled student.
    """
    from asrdistill.nnet.evaluate import score_frames

    scores = {}
    for d in model_dirs:
        model = Path(d) / "final.mdl"
        if not model.is_file():
            raise UserFacingError(f"{model}: missing (is the training of {d} finished?)")
        scores[str(d)] = score_frames([model], dev_feats, dev_ali, device=device)
    best = max(scores, key=lambda k: (scores[k]["frame_acc"], -scores[k]["ce"]))
    temperature = None
    info = Path(best) / "distill.json"
    if info.is_file():
        temperature = json.loads(info.read_text())["distill"].get("temperature")
    return {"scores": scores, "best": best, "best_temperature": temperature, "chosen_on": str(dev_feats)}


def choose_best_system(exp: str | os.PathLike, names: Sequence[str], alias: str, split: str = "dev",
                       device: str = "auto") -> dict:
    """Score the registered systems ``names`` on the manifest's ``split`` set, register the best as ``alias``
    (with the scores) and return the choice."""
    from asrdistill.experiment.manifest import Manifest

    manifest = Manifest(exp)
    sets = manifest.get("sets")
    if split not in sets or "feats" not in sets[split] or "ali" not in sets[split]:
        raise UserFacingError(f"{manifest.path}: no {split} set with feats and ali registered")
    dirs = {str(manifest.model_path(n).parent): n for n in names}
    res = choose_best(list(dirs), sets[split]["feats"], sets[split]["ali"], device=device)
    res["scores"] = {dirs[d]: s for d, s in res["scores"].items()}
    res["best"] = dirs[res["best"]]
    manifest.alias(alias, res["best"], chosen={"by": f"{split} frame accuracy", **res})
    return res
