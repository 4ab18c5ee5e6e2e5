"""The systems manifest of an experiment: ``<exp>/systems.json``.

Every trained or decoded system a recipe makes is registered here with its kind, its files and a copy of the
completion record of the step that made it (step, fingerprint, options, inputs: see :mod:`.step`). The results
tables read the manifest instead of re-deriving names from directories, and :meth:`Manifest.stale` tells which
registered systems no longer match what they were made from::

    {"format": "asrdistill-systems-1",
     "sets": {"dev": {"data": "data/dev", "feats": "data/fbank/dev", "ali": "exp/tri/ali_dev"}, ...},
     "systems": {"ensemble": {"kind": "ensemble", "dir": "exp/dnn/ensemble", "files": {...},
                              "record": {"step": "train-ensemble", "fingerprint": ..., "options": ..., ...}},
                 "distilled": {"same_as": "student_T2", "chosen": {...}}, ...},
     "decodes": {"ensemble": {"dev": "exp/decode/ensemble_dev", "test": "exp/decode/ensemble_test"}, ...},
     "stage_seconds": {"7": 312.4, ...}}

Kinds: ``gmm`` (a GMM-HMM model), ``dnn`` (one network), ``ensemble``, ``student`` (a distilled network),
``cache`` (a teacher cache). ``same_as`` makes a name an alias of another system (the baseline is member 0, the
distilled model the student chosen on dev).
"""
from __future__ import annotations

import json
import time
import os
from pathlib import Path
from typing import Any

from asrdistill.errors import UserFacingError
from asrdistill.experiment.step import read_record, stale_inputs
from asrdistill.utils import write_json_atomic

FORMAT = "asrdistill-systems-1"
KINDS = ("gmm", "dnn", "ensemble", "student", "cache")
_RECORD_KEYS = ("step", "fingerprint", "options", "inputs", "seconds", "info")


class Manifest:
    """Read/write access to ``<exp>/systems.json`` (every change is written atomically at once)."""

    def __init__(self, exp_dir: str | os.PathLike):
        self.exp = Path(exp_dir)
        self.path = self.exp / "systems.json"
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                raise UserFacingError(f"{self.path}: not a readable systems manifest ({err})") from None
            if self.data.get("format") != FORMAT:
                raise UserFacingError(f"{self.path}: not a systems manifest (format {FORMAT!r} expected)")
        else:
            self.data = {"format": FORMAT, "sets": {}, "systems": {}, "decodes": {}, "stage_seconds": {}}

    def save(self) -> None:
        write_json_atomic(self.path, self.data)

    # --- writing --------------------------------------------------------------------------------------
    def add_system(self, name: str, path: str | os.PathLike, kind: str, files: dict[str, str] | None = None,
                   extra: dict[str, Any] | None = None) -> dict:
        """Register ``name``: the dir (or file) ``path`` and the record of the step that made it."""
        if kind not in KINDS:
            raise UserFacingError(f"unknown system kind {kind!r} (choose from {', '.join(KINDS)})")
        p = Path(path)
        if not p.exists():
            raise UserFacingError(f"{p}: no such file or directory (system {name})")
        system_dir = p if p.is_dir() else p.parent
        record_dir, record = system_dir, read_record(system_dir)
        while not (record and record.get("fingerprint")) and record_dir != record_dir.parent:
            record_dir = record_dir.parent  # a member inside an ensemble: the ensemble's step made it
            record = read_record(record_dir)
            if record_dir == system_dir.parent.parent:
                break
        if not record or not record.get("fingerprint"):
            raise UserFacingError(f"{system_dir}: no completion record; is the step that makes it finished?")
        entry = {"kind": kind, "dir": str(record_dir), "files": dict(files or {}),
                 "record": {k: record[k] for k in _RECORD_KEYS if k in record}}
        if p.is_file():
            entry["files"].setdefault("model", str(p))
        entry.update(extra or {})
        self.data["systems"][name] = entry
        self.save()
        return entry

    def alias(self, name: str, target: str, chosen: dict | None = None) -> None:
        """Make ``name`` another name of system ``target`` (e.g. the student chosen on dev)."""
        self.system(target)
        self.data["systems"][name] = {"same_as": target, **({"chosen": chosen} if chosen else {})}
        self.save()

    def add_set(self, split: str, **paths: str | os.PathLike | None) -> None:
        self.data["sets"][split] = {k: str(v) for k, v in paths.items() if v is not None}
        self.save()

    def add_decode(self, system: str, split: str, decode_dir: str | os.PathLike) -> None:
        self.system(system)
        if read_record(decode_dir) is None:
            raise UserFacingError(f"{decode_dir}: decode dir has no completion record")
        self.data["decodes"].setdefault(system, {})[split] = str(decode_dir)
        self.save()

    def drop_decode(self, system: str, split: str) -> None:
        """Forget the decode of ``system`` on ``split`` (e.g. one a newer recipe no longer makes)."""
        decodes = self.data["decodes"].get(system, {})
        if split not in decodes:
            raise UserFacingError(f"{self.path}: no decode of {system!r} on {split!r} is registered")
        del decodes[split]
        if not decodes:
            del self.data["decodes"][system]
        self.save()

    def add_stage_time(self, stage: str, seconds: float) -> None:
        """Record one run of a recipe stage. ``stage_seconds`` keeps each stage's longest run: a rerun that only
        skips finished work says nothing about what the stage costs (every run is in ``stage_runs``)."""
        key, secs = str(stage), round(float(seconds), 1)
        runs = self.data.setdefault("stage_runs", {}).setdefault(key, [])
        if not runs and key in self.data["stage_seconds"]:   # recorded before stage_runs existed
            runs.append({"seconds": self.data["stage_seconds"][key], "at": None})
        runs.append({"seconds": secs, "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self.data["stage_seconds"][key] = max(r["seconds"] for r in runs)
        self.save()

    # --- reading --------------------------------------------------------------------------------------
    def system(self, name: str) -> dict:
        """The entry of ``name`` (aliases followed), with ``name`` and ``resolved`` (the real name) added."""
        systems = self.data["systems"]
        seen = []
        while True:
            if name not in systems:
                known = ", ".join(sorted(systems)) or "none"
                raise UserFacingError(f"{self.path}: no system {name!r} (registered: {known})")
            entry = systems[name]
            if "same_as" not in entry:
                return {**entry, "name": seen[0] if seen else name, "resolved": name,
                        **({"chosen": systems[seen[0]].get("chosen")} if seen and systems[seen[0]].get("chosen")
                           else {})}
            seen.append(name)
            if entry["same_as"] in seen:
                raise UserFacingError(f"{self.path}: alias loop through {name!r}")
            name = entry["same_as"]

    def has(self, name: str) -> bool:
        return name in self.data["systems"]

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n, e in self.data["systems"].items() if "same_as" not in e and (kind is None or e["kind"] == kind)]

    def model_path(self, name: str) -> Path:
        """The model file of a system (for an ensemble: its dir)."""
        e = self.system(name)
        return Path(e["files"].get("model", e["dir"]))

    def decode_dir(self, system: str, split: str) -> Path | None:
        e = self.system(system)
        for n in (e["name"], e["resolved"]):
            d = self.data["decodes"].get(n, {}).get(split)
            if d:
                return Path(d)
        return None

    def get(self, name: str, field: str | None = None) -> Any:
        """A system's entry or one field of it by dotted path (``dir``, ``record.options.temperature``,
        ``options.temperature`` as a short form of ``record.options.temperature``); a set's paths
        (``sets`` with ``dev.feats``); or the record of a decode (``decode:SYSTEM:SPLIT`` with
        ``info.acoustic_scale``)."""
        if name == "sets":
            value: Any = self.data["sets"]
        elif name.startswith("decode:"):  # decode:SYSTEM:SPLIT -> that decode dir's record (+ its dir)
            _, system, split = (name.split(":") + ["", ""])[:3]
            d = self.decode_dir(system, split)
            if d is None:
                raise UserFacingError(f"{self.path}: no decode of {system!r} on {split!r} registered")
            value = {**(read_record(d) or {}), "dir": str(d)}
            name = "sets"  # fields are plain paths into the record
        else:
            value = self.system(name)
        if not field:
            return value
        parts = field.split(".")
        if name != "sets" and parts[0] in ("options", "inputs", "fingerprint", "step", "info"):
            parts = ["record"] + parts
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                raise UserFacingError(f"{self.path}: {name} has no field {field!r}")
            value = value[part]
        return value

    def stale(self) -> dict[str, list[str]]:
        """System (and decode) dirs whose record is missing, replaced, or whose inputs have changed since."""
        out: dict[str, list[str]] = {}
        dirs = {n: e["dir"] for n, e in self.data["systems"].items() if "same_as" not in e}
        dirs.update({f"decode {s} {split}": d for s, by in self.data["decodes"].items() for split, d in by.items()})
        for name, d in dirs.items():
            record = read_record(d)
            registered = self.data["systems"].get(name, {}).get("record", {}).get("fingerprint")
            if not record:
                out[name] = [f"{d} has no completion record"]
            elif registered and record.get("fingerprint") != registered:
                out[name] = [f"{d} was remade after it was registered"]
            else:
                changed = stale_inputs(d)
                if changed:
                    out[name] = [f"input {c} changed" for c in changed]
        return out
