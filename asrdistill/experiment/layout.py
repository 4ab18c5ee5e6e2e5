"""Where every artifact of a recipe lives: the one owner of the experiment layout.

A recipe has a data dir (``data/``: data dirs, features, lang, LM) and an exp dir (``exp/``: models,
alignments, decodes, the systems manifest). :class:`ExpLayout` names every path; recipes read them once
through ``asrdistill layout --shell`` (shell variables and functions), and the library reads them from
here, so no other code spells a recipe path.

::

    data/<split>/                  Kaldi data dirs (stage 1)          data/local/dict/   dict dir
    data/fbank/<split>/            features + CMVN + frame store      data/lang/         lang dir
    data/lm/                       LM and G.fst                       data/corpus_summary.{json,txt}
    exp/mono/, exp/mono/ali_<split>/        monophone GMM-HMM and its alignments
    exp/tri/, exp/tri/ali_<split>/          triphone GMM-HMM (tree) and its alignments (the DNN targets)
    exp/tri/graph/                 HCLG.fst                           exp/boundaries.{json,md}
    exp/dnn/ensemble/member<i>/    ensemble members; member 0 is the baseline
    exp/dnn/teacher_cache/         the ensemble's outputs on the training frames (one pass, every T)
    exp/dnn/distill_T<T>/          students; exp/dnn/hard_subset/, soft_subset_T<T>/  the Table 5 pair
    exp/decode/<system>_<split>/   decode dirs                        exp/export/        the export
    exp/systems.json               the systems manifest (:mod:`.manifest`)
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "dev", "test")


def temperature_name(temperature: float) -> str:
    """``1`` for 1.0, ``2.5`` for 2.5: how a temperature appears in names."""
    return f"{float(temperature):g}"


@dataclass(frozen=True)
class ExpLayout:
    data: Path
    exp: Path

    @classmethod
    def of(cls, data: str | os.PathLike, exp: str | os.PathLike) -> "ExpLayout":
        return cls(Path(data), Path(exp))

    # --- data ---------------------------------------------------------------------------------------------
    def data_dir(self, split: str) -> Path:
        return self.data / split

    @property
    def dict_dir(self) -> Path:
        return self.data / "local" / "dict"

    def feats(self, split: str) -> Path:
        return self.data / "fbank" / split

    @property
    def lang(self) -> Path:
        return self.data / "lang"

    @property
    def lm(self) -> Path:
        return self.data / "lm"

    @property
    def corpus_summary(self) -> Path:
        return self.data / "corpus_summary.json"

    # --- exp ----------------------------------------------------------------------------------------------
    @property
    def mono(self) -> Path:
        return self.exp / "mono"

    @property
    def tri(self) -> Path:
        return self.exp / "tri"

    def ali(self, system: str, split: str) -> Path:
        return self.exp / system / f"ali_{split}"

    @property
    def graph(self) -> Path:
        return self.tri / "graph"

    @property
    def boundaries(self) -> Path:
        return self.exp / "boundaries.json"

    @property
    def ensemble(self) -> Path:
        return self.exp / "dnn" / "ensemble"

    def member(self, i: int) -> Path:
        return self.ensemble / f"member{i}"

    @property
    def teacher_cache(self) -> Path:
        return self.exp / "dnn" / "teacher_cache"

    def student(self, temperature: float) -> Path:
        return self.exp / "dnn" / f"distill_T{temperature_name(temperature)}"

    def subset_model(self, targets: str) -> Path:
        """``hard``: the Table 5 hard-target model (the soft ones, one per temperature, are the shell's
        ``soft_subset_dir T``; the one chosen on dev is the manifest's ``soft_subset``)."""
        return self.exp / "dnn" / f"{targets}_subset"

    def decode(self, system: str, split: str) -> Path:
        return self.exp / "decode" / f"{system}_{split}"

    @property
    def export(self) -> Path:
        return self.exp / "export"

    @property
    def manifest(self) -> Path:
        return self.exp / "systems.json"

    # --- for recipes --------------------------------------------------------------------------------------
    def shell(self) -> str:
        """Shell variable assignments and functions for every path (``eval "$(asrdistill layout ...)"``)."""
        q = shlex.quote
        lines = [f"{name}={q(str(path))}" for name, path in (
            ("local_dict", self.dict_dir), ("lang", self.lang), ("lm", self.lm), ("mono", self.mono),
            ("tri", self.tri), ("graph", self.graph), ("boundaries", self.boundaries),
            ("ensemble", self.ensemble), ("teacher_cache", self.teacher_cache), ("export_dir", self.export),
            ("manifest", self.manifest), ("corpus_summary", self.corpus_summary))]
        for split in SPLITS:
            lines += [f"data_{split}={q(str(self.data_dir(split)))}", f"feats_{split}={q(str(self.feats(split)))}",
                      f"mono_ali_{split}={q(str(self.ali('mono', split)))}",
                      f"tri_ali_{split}={q(str(self.ali('tri', split)))}"]
        lines += [f"hard_subset={q(str(self.subset_model('hard')))}"]
        # families of paths: functions of their parameter (names formatted here, nowhere else)
        lines += [
            f"member_dir() {{ echo {q(str(self.ensemble))}/member$1; }}",
            f"student_dir() {{ echo {q(str(self.exp / 'dnn'))}/distill_T$(printf '%g' \"$1\"); }}",
            f"soft_subset_dir() {{ echo {q(str(self.exp / 'dnn'))}/soft_subset_T$(printf '%g' \"$1\"); }}",
            f"decode_dir() {{ echo {q(str(self.exp / 'decode'))}/$1_$2; }}",
        ]
        return "\n".join(lines) + "\n"
