"""The decoding graph HCLG = H o C o L o G, built as Kaldi's ``utils/mkgraph.sh`` does.

Steps (kaldifst + kaldi_hmm_gmm):
  1. LG   = L_disambig o G (G arc-sorted on input labels), determinize_star (log semiring), minimize_encoded
  2. CLG  = compose_context(disambig phones, context width N, central position P of the tree) o LG
  3. H    = get_h_transducer(ilabel_info, tree, transition model, HTransducerConfig(transition_scale))
  4. HCLGa= H o CLG, determinize_star (log), disambiguation transition-ids mapped to epsilon,
            minimize_encoded
  5. HCLG = add_self_loops(self_loop_scale=0.1, reorder=True) of HCLGa
Written as ``HCLG.fst`` (OpenFst binary) with ``words.txt`` copied beside it and ``graph.json``
(sizes, options). Kaldi's ``fstpushspecial`` and ``fstrmepslocal`` have no Python binding here and are
skipped: the graph has the same paths and weights, only stochasticity/epsilon layout may differ.

Every step checks its inputs first: OpenFst errors kill the process instead of raising (STACK.md trap 4).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from asrdistill.errors import UserFacingError
from asrdistill.utils import atomic_path, get_logger, mark_done

if TYPE_CHECKING:  # pragma: no cover
    import kaldi_hmm_gmm
    import kaldifst

log = get_logger(__name__)


@dataclass
class GraphInfo:
    """What :func:`make_hclg` built (also written to ``graph.json``)."""

    graph_dir: str
    states: int
    arcs: int
    bytes: int
    seconds: float
    context_width: int
    central_position: int
    transition_scale: float
    self_loop_scale: float
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)  # per stage: states, arcs

    @property
    def hclg_path(self) -> Path:
        return Path(self.graph_dir) / "HCLG.fst"

    @property
    def words_path(self) -> Path:
        return Path(self.graph_dir) / "words.txt"


def fst_size(fst: "kaldifst.StdVectorFst") -> dict[str, int]:
    n = fst.num_states
    return {"states": n, "arcs": sum(fst.num_arcs(s) for s in range(n))}


def read_int_list(path: Path) -> list[int]:
    if not path.is_file():
        raise UserFacingError(f"{path}: not found (is this a Kaldi lang dir?)")
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        for tok in line.split():
            if not tok.lstrip("-").isdigit():
                raise UserFacingError(f"{path}:{lineno}: expected integers, got {line!r}")
            out.append(int(tok))
    return out


def read_fst(path: Path, what: str, hint: str = "") -> "kaldifst.StdVectorFst":
    """The ``StdVectorFst`` at ``path``, checked present and non-empty; errors name it as ``what`` (+ ``hint``)."""
    import kaldifst
    if not path.is_file():
        raise UserFacingError(f"{path}: {what} not found{hint}")
    fst = kaldifst.StdVectorFst.read(str(path))
    if fst is None or fst.num_states == 0 or fst.start < 0:
        raise UserFacingError(f"{path}: {what} is empty or unreadable")
    return fst


def _check_nonempty(fst: "kaldifst.StdVectorFst", what: str, hint: str) -> None:
    if fst.num_states == 0 or fst.start < 0:
        raise UserFacingError(f"{what} is empty: {hint}")


def remove_symbols(fst: "kaldifst.StdVectorFst", ilabels: Sequence[int],
                   all_ilabels: Sequence[int] | None = None) -> "kaldifst.StdVectorFst":
    """Replace the given input labels with epsilon (Kaldi's ``fstrmsymbols``), by composing with a
    one-state transducer that maps them to epsilon and every other input label to itself.
    ``all_ilabels``: the input labels that can occur (found by scanning the arcs if not given)."""
    import kaldifst
    drop = set(int(x) for x in ilabels)
    if all_ilabels is None:
        labels = {arc.ilabel for s in range(fst.num_states) for arc in kaldifst.ArcIterator(fst, s)}
    else:
        labels = set(int(x) for x in all_ilabels) | drop
    labels.discard(0)
    lines = [f"0 0 {0 if x in drop else x} {x}" for x in sorted(labels)] + ["0"]
    mapper = kaldifst.compile("\n".join(lines) + "\n", acceptor=False)
    kaldifst.arcsort(mapper, sort_type="olabel")
    out = kaldifst.compose(mapper, fst)
    return out


def _check_phones(lang: Path, trans_model, disambig_phones: Sequence[int]) -> None:
    """The lang dir's phones (phones.txt minus <eps> and #k) must be those of the transition model."""
    from asrdistill.lm.gfst import read_symbol_table
    table = read_symbol_table(lang / "phones.txt")
    lang_phones = {i for p, i in table.items() if i != 0 and not p.startswith("#")}
    tm_phones = set(int(p) for p in trans_model.phones)
    if lang_phones != tm_phones:
        raise UserFacingError(f"{lang}/phones.txt does not match the model's phones: only in the lang dir "
                              f"{sorted(lang_phones - tm_phones)[:10]}, only in the model "
                              f"{sorted(tm_phones - lang_phones)[:10]}")
    if not disambig_phones or any(i in tm_phones for i in disambig_phones):
        raise UserFacingError(f"{lang}/phones/disambig.int: missing, or lists real phones")


def add_word_insertion_penalty(fst: "kaldifst.StdVectorFst", penalty: float) -> "kaldifst.StdVectorFst":
    """A copy of ``fst`` with ``penalty`` added to the cost of every arc that outputs a word (composition
    with a one-state acceptor over the output labels). Positive: fewer words; negative: more words."""
    import kaldifst
    if penalty == 0.0:
        return fst.copy()
    olabels = {arc.olabel for s in range(fst.num_states) for arc in kaldifst.ArcIterator(fst, s)}
    olabels.discard(0)
    lines = [f"0 0 {w} {w} {penalty}" for w in sorted(olabels)] + ["0"]
    W = kaldifst.compile("\n".join(lines) + "\n", acceptor=False)
    kaldifst.arcsort(W, sort_type="ilabel")
    out = kaldifst.compose(fst, W)
    kaldifst.arcsort(out, sort_type="ilabel")
    return out


def make_lg(L_disambig: "kaldifst.StdVectorFst", G: "kaldifst.StdVectorFst") -> "kaldifst.StdVectorFst":
    """LG = det(L_disambig o G), minimised (log semiring determinisation, as mkgraph.sh)."""
    import kaldifst
    kaldifst.arcsort(L_disambig, sort_type="olabel")
    kaldifst.arcsort(G, sort_type="ilabel")
    LG = kaldifst.compose(L_disambig, G)
    _check_nonempty(LG, "L o G", "the lexicon's words and the LM's words do not overlap (check words.txt)")
    if kaldifst.determinize_star(LG, use_log=True):  # True = stopped early (STACK.md trap 5)
        raise UserFacingError("determinization of L o G stopped early (max states)")
    kaldifst.minimize_encoded(LG)
    return LG


def make_hclg(lang_dir: str | os.PathLike, ctx_dep: "kaldi_hmm_gmm.ContextDependency",
              trans_model: "kaldi_hmm_gmm.TransitionModel", G: str | os.PathLike | "kaldifst.StdVectorFst",
              out_dir: str | os.PathLike, transition_scale: float = 1.0, self_loop_scale: float = 0.1
              ) -> GraphInfo:
    """Build ``out_dir/HCLG.fst`` from a Kaldi lang dir (L_disambig.fst, words.txt, phones/disambig.int),
    the tree ``ctx_dep``, the transition model and G (path or FST). Written atomically (the whole dir).

    Works for any Kaldi-layout lang dir (e.g. one made by Kaldi's prepare_lang.sh) and any ARPA-derived
    G.fst over the same words.txt.
    """
    import kaldi_hmm_gmm as khg
    import kaldifst

    t0 = time.time()
    lang = Path(lang_dir)
    L = read_fst(lang / "L_disambig.fst", "lexicon FST with disambiguation symbols")
    G_fst = read_fst(Path(G), "G.fst") if not hasattr(G, "num_states") else G.copy()
    disambig_phones = read_int_list(lang / "phones" / "disambig.int")
    if not (lang / "words.txt").is_file():
        raise UserFacingError(f"{lang / 'words.txt'}: not found")
    _check_phones(lang, trans_model, disambig_phones)
    N, P = int(ctx_dep.context_width), int(ctx_dep.central_position)
    sizes: dict[str, dict[str, int]] = {"L": fst_size(L), "G": fst_size(G_fst)}

    LG = make_lg(L, G_fst)
    sizes["LG"] = fst_size(LG)
    log.info("LG: %(states)d states, %(arcs)d arcs", sizes["LG"])

    CLG, ilabel_info = kaldifst.compose_context(disambig_phones, N, P, LG)
    kaldifst.arcsort(CLG, sort_type="ilabel")
    sizes["CLG"] = fst_size(CLG)
    log.info("CLG: %(states)d states, %(arcs)d arcs, %(n)d context labels",
             dict(sizes["CLG"], n=len(ilabel_info)))
    max_phone = max((max(w) for w in ilabel_info if w), default=0)
    if max_phone > max(trans_model.phones):
        log.debug("ilabel_info holds disambiguation symbols up to %d", max_phone)

    H, disambig_tids = khg.get_h_transducer(ilabel_info, ctx_dep, trans_model,
                                            khg.HTransducerConfig(transition_scale=transition_scale))
    kaldifst.arcsort(H, sort_type="olabel")
    sizes["H"] = fst_size(H)

    HCLG = kaldifst.compose(H, CLG)
    _check_nonempty(HCLG, "H o CLG", "the tree / transition model do not match the lang dir's phones")
    if kaldifst.determinize_star(HCLG, use_log=True):
        raise UserFacingError("determinization of H o CLG stopped early (max states)")
    HCLG = remove_symbols(HCLG, disambig_tids, range(1, int(trans_model.num_transition_ids) + 1))
    kaldifst.minimize_encoded(HCLG)
    sizes["HCLGa"] = fst_size(HCLG)
    HCLG = khg.add_self_loops(self_loop_scale=self_loop_scale, disambig_syms=[], reorder=True,
                              trans_model=trans_model, ifst=HCLG)
    kaldifst.arcsort(HCLG, sort_type="ilabel")
    sizes["HCLG"] = fst_size(HCLG)

    out = Path(out_dir)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        if not HCLG.write(str(tmp / "HCLG.fst")):
            raise UserFacingError(f"{out}: cannot write HCLG.fst")
        shutil.copyfile(lang / "words.txt", tmp / "words.txt")
        nbytes = (tmp / "HCLG.fst").stat().st_size
        info = GraphInfo(str(out), sizes["HCLG"]["states"], sizes["HCLG"]["arcs"], nbytes, 0.0, N, P,
                         transition_scale, self_loop_scale, sizes)
        info.seconds = round(time.time() - t0, 3)
        (tmp / "graph.json").write_text(json.dumps(asdict(info), indent=1) + "\n")
        mark_done(tmp)
    log.info("HCLG %s: %d states, %d arcs, %.1f MB, %.1f s", out / "HCLG.fst", info.states, info.arcs,
             info.bytes / 1e6, info.seconds)
    return info


def load_graph_info(graph_dir: str | os.PathLike) -> GraphInfo:
    path = Path(graph_dir) / "graph.json"
    if not path.is_file():
        raise UserFacingError(f"{graph_dir}: not a graph dir (no graph.json; run `asrdistill make-graph`)")
    return GraphInfo(**json.loads(path.read_text()))
