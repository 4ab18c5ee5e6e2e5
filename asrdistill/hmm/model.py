"""A GMM-HMM acoustic model (topology, tree, transition model, diagonal GMMs) and its pickle-free file format.

kaldi-hmm-gmm objects have no Kaldi-format readers/writers in Python, but their pickling hooks expose their
data: ``__getstate__()`` returns tuples of Python ints/floats, lists and numpy arrays (the HMM topology
nested inside the transition model's state holds ``HmmState`` objects, so the topology is stored as its
Kaldi text instead). A model file is a numpy ``.npz`` archive written with ``allow_pickle=False``:
``spec.json`` describes each object's state as a JSON tree whose leaves are literal values or names of
arrays in the archive; loading rebuilds each object with ``Cls.__new__(Cls)`` and ``obj.__setstate__(state)``.
No pickled code is ever executed.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asrdistill.errors import UserFacingError
from asrdistill.utils import atomic_path

FORMAT = "asrdistill-gmm-hmm-v1"
_KALDI_MODULES = ("_kaldi_hmm_gmm", "kaldi_hmm_gmm")


def _kaldi_class(name: str) -> type:
    """A class of kaldi-hmm-gmm's extension module, by name (nothing else can be named)."""
    import _kaldi_hmm_gmm  # the extension module behind kaldi_hmm_gmm (home of TransitionModelTuple)
    import kaldi_hmm_gmm
    cls = getattr(_kaldi_hmm_gmm, name, None) or getattr(kaldi_hmm_gmm, name, None)
    if not isinstance(cls, type) or not hasattr(cls, "__setstate__"):
        raise UserFacingError(f"model file names an unknown kaldi-hmm-gmm class {name!r}")
    return cls


class _StateCodec:
    """Encode nested ``__getstate__`` data into a JSON spec plus named numpy arrays, and back."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None, topo_text: str | None = None):
        self.arrays: dict[str, np.ndarray] = arrays if arrays is not None else {}
        self.topo_text = topo_text

    def _put(self, value: np.ndarray) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = value
        return key

    def encode(self, x: Any) -> Any:
        import kaldi_hmm_gmm as khg
        if isinstance(x, np.ndarray):
            return {"nd": self._put(x)}
        if isinstance(x, bool) or x is None or isinstance(x, str):
            return {"v": x}
        if isinstance(x, int):
            return {"i": x}
        if isinstance(x, float):
            return {"f": x}
        if isinstance(x, khg.HmmTopology):
            return {"topo": True}
        if type(x).__module__ in _KALDI_MODULES and hasattr(x, "__getstate__"):
            return {"obj": type(x).__name__, "s": self.encode(x.__getstate__())}
        if isinstance(x, (list, tuple)):
            kind = "t" if isinstance(x, tuple) else "l"
            if x and len({type(e) for e in x}) == 1 and type(x[0]).__module__ in _KALDI_MODULES:
                states = [e.__getstate__() for e in x]
                if all(isinstance(st, tuple) and all(type(v) is int for v in st) for st in states) \
                        and len({len(st) for st in states}) == 1:
                    return {kind + "objs": type(x[0]).__name__, "a": self._put(np.asarray(states, dtype=np.int64))}
            if len(x) > 1 and all(isinstance(e, np.ndarray) for e in x) and len({e.dtype for e in x}) == 1:
                # many arrays (e.g. 3 per pdf of an AmDiagGmm): one flat buffer + shapes, fast to load
                flat = np.concatenate([e.ravel() for e in x])
                return {kind + "pack": self._put(flat), "shapes": [list(e.shape) for e in x]}
            if x and all(type(e) is int for e in x):
                return {kind + "i": self._put(np.asarray(x, dtype=np.int64))}
            if x and all(type(e) is float for e in x):
                return {kind + "f": self._put(np.asarray(x, dtype=np.float64))}
            return {kind: [self.encode(e) for e in x]}
        raise TypeError(f"cannot store {type(x).__name__} in a model file")

    def decode(self, spec: Any) -> Any:
        if "obj" in spec:
            return restore(_kaldi_class(spec["obj"]), self.decode(spec["s"]))
        for kind in ("lpack", "tpack"):
            if kind in spec:
                flat = self.arrays[spec[kind]]
                sizes = [int(np.prod(sh)) for sh in spec["shapes"]]
                bounds = np.cumsum([0] + sizes)
                items = [flat[bounds[k]:bounds[k + 1]].reshape(sh).copy() for k, sh in enumerate(spec["shapes"])]
                return tuple(items) if kind[0] == "t" else items
        for kind in ("lobjs", "tobjs"):
            if kind in spec:
                cls = _kaldi_class(spec[kind])
                items = [restore(cls, tuple(row)) for row in self.arrays[spec["a"]].tolist()]
                return tuple(items) if kind[0] == "t" else items
        (kind, val), = spec.items()
        if kind == "nd":
            return self.arrays[val]
        if kind in ("v", "i", "f"):
            return val
        if kind == "topo":
            import kaldi_hmm_gmm as khg
            topo = khg.HmmTopology()
            topo.read(self.topo_text)
            return topo
        if kind in ("li", "lf", "ti", "tf"):
            items = self.arrays[val].tolist()
            return tuple(items) if kind[0] == "t" else items
        items = [self.decode(e) for e in val]
        return tuple(items) if kind == "t" else items


def restore(cls: type, state: Any) -> Any:
    """Rebuild a kaldi-hmm-gmm object from its ``__getstate__()`` data (no pickle involved)."""
    obj = cls.__new__(cls)
    obj.__setstate__(state)
    return obj


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive (as ``np.savez``, no pickle) whose bytes depend only on the arrays: every member gets
    the same fixed timestamp, where ``np.savez`` would stamp the current time."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buf.getvalue()


@dataclass
class GmmHmm:
    """A trained GMM-HMM system. ``phones`` is the lang's phones.txt (id -> symbol)."""

    topo_text: str
    ctx_dep: Any                 # kaldi_hmm_gmm.ContextDependency
    trans_model: Any             # kaldi_hmm_gmm.TransitionModel
    am: Any                      # kaldi_hmm_gmm.AmDiagGmm
    phones: list[str]
    feature_config: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def num_pdfs(self) -> int:
        return int(self.am.num_pdfs)

    def topology(self) -> Any:
        import kaldi_hmm_gmm as khg
        topo = khg.HmmTopology()
        topo.read(self.topo_text)
        return topo

    def tid2pdf(self) -> np.ndarray:
        """pdf-id of each transition-id (index 0 unused)."""
        return np.asarray(self.trans_model.transition_id_to_pdf_array(), dtype=np.int32)

    def tid2phone(self) -> np.ndarray:
        tm = self.trans_model
        return np.asarray([0] + [tm.transition_id_to_phone(t) for t in range(1, tm.num_transition_ids + 1)],
                          dtype=np.int32)

    def tid_info(self) -> dict[str, np.ndarray]:
        """Per transition-id arrays (index 0 unused): phone, hmm_state, pdf_class, trans_index (position of
        the transition in its HMM state's list), is_self_loop, is_final (goes to the final state), is_start
        (first frame of a phone in reordered alignments: leaves HMM state 0, not a self-loop)."""
        tm = self.trans_model
        topo = self.topology()
        n = tm.num_transition_ids + 1
        out = {k: np.zeros(n, dtype=np.int32) for k in ("phone", "hmm_state", "pdf_class", "trans_index",
                                                         "is_self_loop", "is_final", "trans_state")}
        id2state, state2id = tm.id2state, tm.state2id
        tuples = tm.tuples
        for tid in range(1, n):
            ts = id2state[tid]
            phone, hmm_state, _, _ = tuples[ts - 1].__getstate__()
            self_loop = tm.is_self_loop(tid)
            st = topo.topology_for_phone(phone)[hmm_state]
            out["phone"][tid] = phone
            out["hmm_state"][tid] = hmm_state
            out["pdf_class"][tid] = st.self_loop_pdf_class if self_loop else st.forward_pdf_class
            out["trans_index"][tid] = tid - state2id[ts]
            out["is_self_loop"][tid] = self_loop
            out["is_final"][tid] = tm.is_final(tid)
            out["trans_state"][tid] = ts
        out["is_start"] = ((out["hmm_state"] == 0) & (out["is_self_loop"] == 0)).astype(np.int32)
        out["is_start"][0] = 0
        return out

    # --- serialisation -------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        codec = _StateCodec(topo_text=self.topo_text)
        spec = {
            "format": FORMAT,
            "topo_text": self.topo_text,
            "phones": self.phones,
            "feature_config": self.feature_config,
            "info": self.info,
            "ctx_dep": codec.encode(self.ctx_dep.__getstate__()),
            "trans_model": codec.encode(self.trans_model.__getstate__()),
            "am": codec.encode(self.am.__getstate__()),
        }
        arrays = {"spec_json": np.frombuffer(json.dumps(spec).encode(), dtype=np.uint8), **codec.arrays}
        return _npz_bytes(arrays)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "GmmHmm":
        import zipfile

        import kaldi_hmm_gmm as khg
        if not data:
            raise UserFacingError(f"{source}: empty file (not a GMM-HMM model; an interrupted copy?)")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            spec = json.loads(arrays.pop("spec_json").tobytes().decode())
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as err:
            raise UserFacingError(f"{source}: truncated or corrupt GMM-HMM model file ({err})") from None
        except (ValueError, KeyError, OSError, UnicodeDecodeError, AttributeError) as err:
            raise UserFacingError(f"{source}: not a GMM-HMM model file ({type(err).__name__}: {err})") from None
        if not isinstance(spec, dict) or spec.get("format") != FORMAT:
            raise UserFacingError(f"{source}: unknown model format "
                                  f"{spec.get('format') if isinstance(spec, dict) else None!r}")
        try:
            codec = _StateCodec(arrays, spec["topo_text"])
            return cls(
                topo_text=spec["topo_text"],
                ctx_dep=restore(khg.ContextDependency, codec.decode(spec["ctx_dep"])),
                trans_model=restore(khg.TransitionModel, codec.decode(spec["trans_model"])),
                am=restore(khg.AmDiagGmm, codec.decode(spec["am"])),
                phones=list(spec["phones"]),
                feature_config=spec["feature_config"],
                info=spec["info"],
            )
        except UserFacingError:
            raise
        except Exception as err:  # inconsistent members: the Kaldi objects refuse their state in assorted ways
            raise UserFacingError(f"{source}: corrupt GMM-HMM model file ({type(err).__name__}: {err})") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (npz archive, no pickle); also usable as ``exp/<sys>/final.mdl``."""
        data = self.to_bytes()
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GmmHmm":
        from asrdistill.errors import os_error_message

        path = Path(path)
        if not path.is_file():
            raise UserFacingError(f"{path}: model file not found")
        try:
            data = path.read_bytes()
        except OSError as err:
            raise UserFacingError(os_error_message(err, path, "read")) from None
        return cls.from_bytes(data, str(path))

    def tree_bytes(self) -> bytes:
        """The tree as a Kaldi binary ContextDependency file (what ``__getstate__`` holds)."""
        state = self.ctx_dep.__getstate__()
        return bytes((np.asarray(state[0], dtype=np.int64) % 256).astype(np.uint8))


def copy_am(am: Any) -> Any:
    import kaldi_hmm_gmm as khg
    new = khg.AmDiagGmm()
    new.copy_from_am_diag_gmm(am)
    return new
