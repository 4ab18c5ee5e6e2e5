"""Steps and their completion records: a finished output dir knows what it was made from.

Every command that writes an output dir runs as a :class:`Step`. Its *record* is the JSON file
``<dir>/.done``, written only after the work succeeded::

    {"format": "asrdistill-step-1", "step": "train-tri", "fingerprint": "<sha256>",
     "options": {...}, "inputs": {"ali_dir": {"path": "exp/mono/ali_train", "fingerprint": "<sha256>"}, ...},
     "outputs": {"final.mdl": "<sha256>", ...}, "seconds": 12.3, "version": "0.1.0"}

The fingerprint covers the step's name, its options and its inputs' fingerprints (:mod:`.fingerprint`);
an input made by the toolkit contributes the fingerprint of its own record, so a change anywhere upstream
changes every fingerprint downstream of it.

The policy on a rerun:

* same fingerprint, record present: the step is skipped ("SKIPPING ... complete");
* different fingerprint: the step is redone, after a log line that names each option and input that
  changed; its old record is removed first, so the dir never claims to be complete while it is redone.
  Steps downstream see the new fingerprint when they run and are redone in turn (tree -> alignments ->
  DNNs -> teacher cache -> decodes). With ``--stop-stage`` a stale downstream dir simply waits for its
  stage to run; :func:`stale_inputs` tells which records no longer match their inputs;
* no record but ``.<dir>.started`` (beside it) with the same fingerprint: an interrupted run of the same work; the
  step may resume (DNN training continues from its last checkpoint). With another fingerprint it starts
  over.

:meth:`Step.begin` also removes what a killed run left behind: hidden ``.<name>.*.tmp`` dirs of
:func:`asrdistill.utils.atomic_path` beside and inside the output dir. Timings live in the record, never
in the outputs, so two runs give byte-identical outputs.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from asrdistill import __version__
from asrdistill.errors import UserFacingError
from asrdistill.experiment.fingerprint import RECORD, input_fingerprint, read_record, sha256_file, step_fingerprint
from asrdistill.utils import get_logger, write_json_atomic

log = get_logger(__name__)

STARTED = ".started"
FORMAT = "asrdistill-step-1"


def _describe(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two records: options first, then inputs."""
    out: list[str] = []
    if old.get("step") != new.get("step"):
        out.append(f"step {old.get('step')!r} -> {new.get('step')!r}")
    oo, no = old.get("options", {}), new.get("options", {})
    for key in sorted(set(oo) | set(no)):
        if oo.get(key, "<unset>") != no.get(key, "<unset>"):
            out.append(f"option {key}: {_describe(oo.get(key, '<unset>'))} -> {_describe(no.get(key, '<unset>'))}")
    oi, ni = old.get("inputs", {}), new.get("inputs", {})
    for key in sorted(set(oi) | set(ni)):
        a, b = oi.get(key, {}), ni.get(key, {})
        if a.get("fingerprint") != b.get("fingerprint"):
            if a.get("path") != b.get("path"):
                out.append(f"input {key}: {a.get('path', '<none>')} -> {b.get('path', '<none>')}")
            else:
                out.append(f"input {key} ({b.get('path')}) changed")
    return out


class Step:
    """One unit of work that writes ``out_dir`` (see the module docstring for the policy).

    ``inputs`` maps a name to a path (None entries are left out). ``options`` must be JSON-able and hold
    everything besides the inputs that changes the result (not the number of jobs or threads).
    """

    def __init__(self, out_dir: str | os.PathLike, step: str, options: Mapping[str, Any],
                 inputs: Mapping[str, str | os.PathLike | None]):
        self.out = Path(out_dir)
        self.step = step
        self.options = json.loads(json.dumps(dict(options), sort_keys=True, default=str))
        self.inputs = {k: str(v) for k, v in sorted(inputs.items()) if v is not None}
        fps = {k: input_fingerprint(v) for k, v in self.inputs.items()}
        self.fingerprint = step_fingerprint(step, self.options, fps)
        self.record: dict[str, Any] = {
            "format": FORMAT, "step": step, "fingerprint": self.fingerprint, "options": self.options,
            "inputs": {k: {"path": self.inputs[k], "fingerprint": fps[k]} for k in self.inputs},
            "version": __version__}
        self._t0: float | None = None

    # --- state ------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True when ``out_dir`` holds a record with this step's fingerprint."""
        old = read_record(self.out)
        return bool(old) and old.get("fingerprint") == self.fingerprint

    @property
    def started_path(self) -> Path:
        """``.<name>.started`` beside the output dir: written when the work begins, so a failure leaves no
        output dir behind and an interrupted run can be recognised."""
        return self.out.parent / f".{self.out.name}{STARTED}"

    @property
    def resumable(self) -> bool:
        """True when an interrupted run of this very work left its start marker behind (DNN training resumes)."""
        started = read_record(self.started_path.parent, self.started_path.name)
        return bool(started) and started.get("fingerprint") == self.fingerprint

    def changes(self) -> list[str]:
        """What differs from the record already in ``out_dir`` (empty if there is none or it matches)."""
        old = read_record(self.out)
        if old is None or old.get("fingerprint") == self.fingerprint:
            return []
        if not old.get("fingerprint"):
            return ["the old result has no record of what it was made from"]
        return differences(old, self.record) or ["the inputs' contents changed"]

    # --- running ----------------------------------------------------------------------------------------
    def skip(self) -> bool:
        """If the work is complete, log "SKIPPING" and return True; otherwise return False."""
        if self.done:
            log.info("SKIPPING %s: %s is complete (%s)", self.step, self.out, self.fingerprint[:12])
            return True
        return False

    def begin(self) -> bool:
        """Prepare to (re)do the work; returns whether an interrupted run of the same work may be resumed.

        Logs why the work is redone, removes the old record and the leftovers of killed runs, checks that
        the output dir can be written, and writes the start marker (beside the output dir).
        """
        changed = self.changes()
        if changed:
            log.warning("%s: redoing %s: %s", self.out, self.step, "; ".join(changed))
        resume = self.resumable and not changed
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserFacingError(f"{self.out.parent}: cannot create ({err.strerror or err})") from None
        (self.out / RECORD).unlink(missing_ok=True)
        remove_leftovers(self.out)
        for d in (self.out, self.out.parent):
            if d.is_dir() and not os.access(d, os.W_OK | os.X_OK):
                raise UserFacingError(f"{d}: output dir is not writable")
        write_json_atomic(self.started_path, self.record)
        self._t0 = time.time()
        return resume

    def complete(self, outputs: Iterable[str] = (), info: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Write the record (with the sha256 of each named output file, relative to ``out_dir``)."""
        record = dict(self.record)
        digests = {}
        for rel in outputs:
            path = self.out / rel
            if not path.is_file():
                raise UserFacingError(f"{path}: expected output of {self.step} is missing")
            digests[rel] = sha256_file(path)
        record["outputs"] = digests
        if self._t0 is not None:
            record["seconds"] = round(time.time() - self._t0, 3)
        if info:
            record["info"] = json.loads(json.dumps(dict(info), default=str))
        write_json_atomic(self.out / RECORD, record)
        self.started_path.unlink(missing_ok=True)
        return record


def remove_leftovers(out_dir: Path) -> list[Path]:
    """Remove hidden temp dirs that a killed :func:`~asrdistill.utils.atomic_path` left beside or inside
    ``out_dir`` (``.<name>.*.tmp``); returns what was removed."""
    removed = []
    candidates = list(out_dir.parent.glob(f".{out_dir.name}.*.tmp")) if out_dir.parent.is_dir() else []
    if out_dir.is_dir():
        candidates += [p for p in out_dir.rglob(".*.tmp") if p.is_dir()]
    for p in candidates:
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    if removed:
        log.info("%s: removed %d leftover temp dir(s) of an interrupted run", out_dir, len(removed))
    return removed


def stale_inputs(directory: str | os.PathLike) -> list[str]:
    """The inputs of ``directory``'s record whose fingerprint is no longer what the record says."""
    record = read_record(directory) or {}
    stale = []
    for name, entry in record.get("inputs", {}).items():
        path = entry.get("path")
        try:
            now = input_fingerprint(path)
        except UserFacingError:
            now = None
        if now != entry.get("fingerprint"):
            stale.append(f"{name} ({path})")
    return stale
