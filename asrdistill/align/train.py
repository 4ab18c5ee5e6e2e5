"""Monophone and triphone GMM-HMM training (Viterbi EM), after Kaldi's steps/train_mono.sh and
steps/train_deltas.sh.

Monophone: one pdf per HMM state of each phone, all initialised with the global mean and variance of the
GMM features (gmm-init-mono); flat start from equal alignments of the training graphs; then ``num_iters``
EM iterations that realign on ``realign_iters`` (beam 6 on the first, then ``beam``), accumulate with the
current model, update by maximum likelihood (``mle_am_diag_gmm_update``, transition ``mle_update``) and
split Gaussians (:func:`asrdistill.hmm.mixup.mix_up`, seeded) towards ``tot_gauss``, growing linearly over ``max_iter_inc`` iterations.

Triphone: tree statistics from the monophone alignment, a decision tree (:mod:`asrdistill.tree`) with
``num_leaves`` leaves, a new transition model on the tree, one Gaussian per pdf from the tree statistics
(gmm-init-model), the monophone alignment converted onto the tree (convert-ali), then EM as above.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from asrdistill.align.engine import PassConfig, PassResult, run_pass, stats_to_accumulator
from asrdistill.hmm.cepstra import GmmFeatures
from asrdistill.hmm.mixup import mix_up
from asrdistill.hmm.model import GmmHmm
from asrdistill.errors import DataDirError, UserFacingError
from asrdistill.lang.prepare import Lang
from asrdistill.utils import get_logger, write_json_atomic

log = get_logger(__name__)

MONO_REALIGN_ITERS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38)


@dataclass
class GmmTrainConfig:
    num_iters: int = 40
    tot_gauss: int = 1000
    max_iter_inc: int = 30
    realign_iters: tuple[int, ...] = MONO_REALIGN_ITERS
    beam: float = 10.0
    first_beam: float = 6.0          # beam of the first realignment (monophone flat start)
    retry_beam: float = 40.0
    boost_silence: float = 1.0
    power: float = 0.25              # Gaussians per pdf ~ occupancy^power when mixing up
    perturb_factor: float = 0.01
    min_split_count: float = 20.0
    min_gaussian_occupancy: float = 10.0
    init_min_gaussian_occupancy: float = 3.0
    nj: int = 1
    scheduler: str | None = None     # a Dask scheduler's address: its workers run the passes instead of nj processes
    seed: int = 0
    # triphone only
    num_leaves: int = 2000
    cluster_thresh: float = -1.0     # -1: as Kaldi, the tree helper picks it
    tree_min_count: float = 100.0

    def model_options(self) -> dict[str, Any]:
        """The options recorded in a model file: all but ``nj`` and ``scheduler``, which never change the result."""
        return {k: v for k, v in asdict(self).items() if k not in ("nj", "scheduler")}


@dataclass
class TrainReport:
    stages: dict[str, float] = field(default_factory=dict)   # seconds per stage
    iterations: list[dict] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _flags() -> int:
    import kaldi_hmm_gmm as khg
    return int(khg.GmmUpdateFlags.kGmmAll.value)


def global_stats(feat_dir: str, utts: Sequence[str], feat_fn: GmmFeatures, max_utts: int = 1000
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the GMM features over (up to ``max_utts``, evenly spread) utterances."""
    from asrdistill.features.store import FrameStore
    store = FrameStore(feat_dir)
    step = max(1, len(utts) // max_utts)
    n, s, s2 = 0, 0.0, 0.0
    for u in list(utts)[::step]:
        f = feat_fn(store.get(u)).astype(np.float64)
        n += len(f)
        s = s + f.sum(0)
        s2 = s2 + (f * f).sum(0)
    if n == 0:
        raise UserFacingError(f"{feat_dir}: no frames to initialise the GMMs")
    mean = s / n
    return mean, np.maximum(s2 / n - mean * mean, 1e-3)


def single_gaussian(mean: np.ndarray, var: np.ndarray) -> Any:
    import kaldi_hmm_gmm as khg
    g = khg.DiagGmm(1, len(mean))
    g.set_weights(np.ones(1, dtype=np.float32))
    g.set_invvars_and_means((1.0 / np.asarray(var))[None].astype(np.float32),
                            np.asarray(mean)[None].astype(np.float32))
    g.compute_gconsts()
    return g


def init_mono_model(lang: Lang, feat_dir: str, utts: Sequence[str]) -> GmmHmm:
    """gmm-init-mono: monophone tree (phones of one phone set share pdfs), transition model from the
    topology, every pdf = the global Gaussian of the features."""
    import kaldi_hmm_gmm as khg
    from asrdistill.features.store import FrameStore
    topo = lang.topology()
    phones = lang.real_phones
    npc = [0] * (max(phones) + 1)
    for p, n in lang.num_pdf_classes.items():
        npc[p] = n
    # phones on one line of sets.txt share their pdfs (gmm-init-mono --shared-phones)
    ctx = khg.monophone_context_dependency_shared([sorted(s) for s in lang.sets], npc)
    tm = khg.TransitionModel(ctx_dep=ctx, hmm_topo=topo)
    feat_fn = GmmFeatures(FrameStore(feat_dir).dim)
    mean, var = global_stats(feat_dir, utts, feat_fn)
    g = single_gaussian(mean, var)
    am = khg.AmDiagGmm()
    for _ in range(tm.num_pdfs):
        am.add_pdf(g)
    return GmmHmm(lang.topo_text, ctx, tm, am, list(lang.phones), feat_fn.config(), {"kind": "mono"})


def update_model(model: GmmHmm, res: PassResult, num_gauss: int, cfg: GmmTrainConfig,
                 min_gaussian_occupancy: float | None = None) -> dict:
    """One M-step (gmm-est): ML update of GMMs and transitions, then mix up to ``num_gauss``."""
    import kaldi_hmm_gmm as khg
    acc = stats_to_accumulator(model.am, res)
    opts = khg.MleDiagGmmOptions()
    opts.min_gaussian_occupancy = (cfg.min_gaussian_occupancy if min_gaussian_occupancy is None
                                   else min_gaussian_occupancy)
    objf_impr, count = khg.mle_am_diag_gmm_update(opts, acc, _flags(), model.am)
    tcfg = khg.MleTransitionUpdateConfig()
    t_impr, t_count = model.trans_model.mle_update(res.trans_stats, tcfg)
    if num_gauss > model.am.num_gauss:
        mix_up(model.am, res.pdf_occs, num_gauss, cfg.perturb_factor, cfg.power, cfg.min_split_count, cfg.seed)
    model.am.compute_gconsts()
    return {"gmm_objf_impr_per_frame": objf_impr / max(count, 1.0), "count": count,
            "trans_objf_impr_per_frame": t_impr / max(t_count, 1.0), "num_gauss": int(model.am.num_gauss)}


def _em(model: GmmHmm, lang: Lang, feat_dir: str, utts: list[str], transcripts: dict[str, list[int]],
        alignments: dict[str, np.ndarray], cfg: GmmTrainConfig, report: TrainReport, num_gauss: int,
        first_realign_beam: float | None, desc: str) -> dict[str, np.ndarray]:
    """EM iterations 1 .. num_iters-1 starting from ``alignments`` (valid for ``model``)."""
    inc_gauss = max(0, (cfg.tot_gauss - num_gauss) // max(cfg.max_iter_inc, 1))
    common = dict(transcripts=transcripts, lexicon_fst=str(lang.L_path), disambig=lang.disambig_phones,
                  silence_phones=lang.silence_phones, nj=cfg.nj, scheduler=cfg.scheduler)
    for it in range(1, cfg.num_iters):
        t0 = time.time()
        entry: dict[str, Any] = {"iter": it}
        if it in cfg.realign_iters:
            beam = first_realign_beam if (first_realign_beam and it == 1) else cfg.beam
            pc = PassConfig(mode="align", beam=beam, retry_beam=cfg.retry_beam, boost_silence=cfg.boost_silence)
            res = run_pass(model, feat_dir, utts, pc, desc=f"{desc} iter {it} align+acc", **common)
            alignments = res.alignments
            entry["align_like_per_frame"] = res.align_like / max(res.num_frames, 1)
            entry["failed"] = len(res.failed)
        else:
            pc = PassConfig(mode="fixed")
            res = run_pass(model, feat_dir, [u for u in utts if u in alignments], pc, fixed=alignments,
                           desc=f"{desc} iter {it} acc", **{k: v for k, v in common.items() if k in ("nj", "scheduler")})
        entry["acc_like_per_frame"] = res.acc_like / max(res.num_frames, 1)
        entry.update(update_model(model, res, num_gauss, cfg))
        if it <= cfg.max_iter_inc:
            num_gauss = min(cfg.tot_gauss, num_gauss + inc_gauss)
        entry["seconds"] = round(time.time() - t0, 3)
        report.iterations.append(entry)
        log.info("%s iter %d: like/frame %.3f, %d Gaussians, %.1fs", desc, it, entry["acc_like_per_frame"],
                 entry["num_gauss"], entry["seconds"])
    return alignments


def train_mono(lang: Lang, feat_dir: str | os.PathLike, transcripts: dict[str, list[int]],
               cfg: GmmTrainConfig | None = None) -> tuple[GmmHmm, dict[str, np.ndarray], TrainReport]:
    """Train a monophone GMM-HMM; returns (model, last training alignments, report).

    ``transcripts`` maps utterance -> word ids (:func:`asrdistill.lang.transcripts_to_ids`); utterances
    missing from the frame store are skipped with a warning."""
    from asrdistill.features.store import FrameStore
    cfg = cfg or GmmTrainConfig()
    report = TrainReport()
    feat_dir = str(feat_dir)
    store = FrameStore(feat_dir)
    utts = [u for u in store.utts if u in transcripts]
    if len(utts) < len(transcripts):
        from asrdistill.align.alidir import name_some
        no_feats = sorted((u for u in transcripts if u not in store), key=str.encode)
        log.warning("%d utterances with transcripts have no features in %s (too short?); skipped: %s",
                    len(no_feats), feat_dir, name_some(no_feats))
    if not utts:
        raise UserFacingError(f"{feat_dir}: no utterance has both features and a transcript")
    store.check_finite(utts)  # a NaN/Inf frame is an error naming its utterance, not NaN statistics
    t0 = time.time()
    model = init_mono_model(lang, feat_dir, utts)
    report.stages["init"] = time.time() - t0
    num_gauss = model.num_pdfs
    t0 = time.time()
    res = run_pass(model, feat_dir, utts, PassConfig(mode="equal", seed=cfg.seed), transcripts=transcripts,
                   lexicon_fst=str(lang.L_path), disambig=lang.disambig_phones, nj=cfg.nj, desc="mono equal-align",
                   scheduler=cfg.scheduler)
    info = update_model(model, res, num_gauss, cfg, cfg.init_min_gaussian_occupancy)
    report.iterations.append({"iter": 0, "acc_like_per_frame": res.acc_like / max(res.num_frames, 1),
                              "failed": len(res.failed), **info, "seconds": round(time.time() - t0, 3)})
    report.stages["equal_align_iter0"] = time.time() - t0
    t0 = time.time()
    alignments = _em(model, lang, feat_dir, utts, transcripts, res.alignments, cfg, report, num_gauss,
                     cfg.first_beam, "mono")
    report.stages["em"] = time.time() - t0
    model.info.update({"kind": "mono", "config": cfg.model_options()})
    return model, alignments, report


def align_data(model: GmmHmm, lang: Lang, feat_dir: str | os.PathLike, transcripts: dict[str, list[int]],
               out_dir: str | os.PathLike, beam: float = 10.0, retry_beam: float = 40.0,
               boost_silence: float = 1.0, nj: int = 1, data_dir: str | os.PathLike | None = None,
               scheduler: str | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Align a data set with ``model`` (Kaldi's align_si.sh) and write the alignment dir ``out_dir``.
    Utterances that fail even with ``retry_beam`` are logged and left out (listed in failed.txt)."""
    from asrdistill.align.alidir import write_alignment_dir
    from asrdistill.features.store import FrameStore
    feat_dir = str(feat_dir)
    store = FrameStore(feat_dir)
    utts = [u for u in store.utts if u in transcripts]
    missing = [u for u in store.utts if u not in transcripts]
    no_feats = sorted((u for u in transcripts if u not in store), key=str.encode)
    if no_feats:  # e.g. too short for one frame: named here and listed in failed.txt, never silently dropped
        from asrdistill.align.alidir import name_some
        log.warning("%d utterances with transcripts have no features in %s (listed in failed.txt): %s",
                    len(no_feats), feat_dir, name_some(no_feats))
    store.check_finite(utts)
    t0 = time.time()
    res = run_pass(model, feat_dir, utts, PassConfig(mode="align", beam=beam, retry_beam=retry_beam,
                                                     boost_silence=boost_silence, accumulate=False),
                   transcripts=transcripts, lexicon_fst=str(lang.L_path), disambig=lang.disambig_phones,
                   silence_phones=lang.silence_phones, nj=nj, desc=f"align {Path(feat_dir).name}",
                   scheduler=scheduler)
    tid2pdf = model.tid2pdf()
    pdf = {u: tid2pdf[a] for u, a in res.alignments.items()}
    failed = sorted(res.failed + missing + no_feats)
    write_alignment_dir(out_dir, pdf, model.num_pdfs, tid_alignments=res.alignments, failed=failed, model=model,
                        info={"feat_dir": str(Path(feat_dir).resolve()),
                              "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
                              "align_like_per_frame": res.align_like / max(res.num_frames, 1),
                              "model_kind": model.info.get("kind")})
    log.info("aligned %s in %.1f s", feat_dir, time.time() - t0)
    return res.alignments, failed


def save_report(report: TrainReport, path: str | os.PathLike) -> None:
    write_json_atomic(path, {"stages": report.stages, "iterations": report.iterations, "failed": report.failed})


def save_system(model: GmmHmm, report: TrainReport, exp_dir: str | os.PathLike) -> list[str]:
    """Write ``exp_dir/final.mdl``, ``report.json`` and, for a triphone system, ``tree`` (Kaldi binary
    ContextDependency); returns the names of the files written."""
    from asrdistill.utils import atomic_path

    exp = Path(exp_dir)
    model.save(exp / "final.mdl")
    save_report(report, exp / "report.json")
    written = ["final.mdl", "report.json"]
    if model.info.get("kind") == "tri":
        with atomic_path(exp / "tree") as tmp:
            tmp.write_bytes(b"\0B" + model.tree_bytes())
        written.append("tree")
    return written


def shortest_utterances(transcripts: dict[str, list[int]], feat_dir: str | os.PathLike, n: int
                        ) -> dict[str, list[int]]:
    """The ``n`` shortest utterances with features (Kaldi's ``utils/subset_data_dir.sh --shortest``, as in
    train_2kshort); ties by name. ``n <= 0`` keeps all."""
    if n <= 0:
        return transcripts
    from asrdistill.features.store import FrameStore
    store = FrameStore(feat_dir)
    lengths = dict(zip(store.utts, store.lengths.tolist()))
    keep = sorted((u for u in transcripts if u in lengths), key=lambda u: (lengths[u], u))[:n]
    return {u: transcripts[u] for u in sorted(keep)}


def read_source_alignments(ali_dir: str | os.PathLike, transcripts: dict[str, list[int]]
                           ) -> tuple[GmmHmm, dict[str, np.ndarray]]:
    """The model and transition-id alignments of an alignment dir made by :func:`align_data` (for
    :func:`train_tri`), restricted to utterances with transcripts."""
    from asrdistill.align.alidir import read_alignment_dir
    ali_dir = Path(ali_dir)
    tids = read_alignment_dir(ali_dir).transition_ids()
    if tids is None or not (ali_dir / "final.mdl").is_file():
        raise UserFacingError(f"{ali_dir}: needs ali.scp and final.mdl (made by `asrdistill align`)")
    source = GmmHmm.load(ali_dir / "final.mdl")
    return source, {u: np.asarray(v, dtype=np.int32) for u, v in tids.items() if u in transcripts}


def tri_config(**overrides: Any) -> GmmTrainConfig:
    """Kaldi train_deltas.sh defaults: 35 iterations, realign at 10, 20, 30, mixing up over 25."""
    base = dict(num_iters=35, realign_iters=(10, 20, 30), max_iter_inc=25, tot_gauss=10000, num_leaves=2000,
                first_beam=0.0)
    base.update(overrides)
    return GmmTrainConfig(**base)


def accumulate_tree_stats(model: GmmHmm, feat_dir: str, alignments: dict[str, np.ndarray]) -> Any:
    """Tree statistics (acc-tree-stats): every aligned frame's GMM features under its (left, centre,
    right, pdf-class) context."""
    from tqdm import tqdm

    from asrdistill.align.boundaries import phone_segments
    from asrdistill.features.store import FrameStore
    from asrdistill.tree import TreeStats
    store = FrameStore(feat_dir)
    store.check_finite(sorted(u for u in alignments if u in store))
    feat_fn = GmmFeatures(store.dim)
    info = model.tid_info()
    stats = TreeStats(feat_fn.dim)
    for utt in tqdm(sorted(alignments), desc="tree stats", unit="utt", leave=False, mininterval=2.0):
        tids = alignments[utt]
        segs = phone_segments(tids, info["is_start"], info["phone"])
        stats.accumulate(feat_fn(store.get(utt)), [(p, info["pdf_class"][tids[s:e]]) for p, s, e in segs])
    return stats


def convert_alignments(alignments: dict[str, np.ndarray], old: GmmHmm, new: GmmHmm) -> dict[str, np.ndarray]:
    """Kaldi's convert-ali: map each frame's (phone, HMM state, transition index) onto ``new``'s transition
    model, with the pdfs that ``new``'s tree gives the phone in its context (same topology required)."""
    from asrdistill.align.boundaries import phone_segments
    if old.topo_text != new.topo_text:
        raise UserFacingError("convert_alignments: the two models have different HMM topologies")
    oi = old.tid_info()
    tm, ctx = new.trans_model, new.ctx_dep
    width, centre = ctx.context_width, ctx.central_position
    topo = new.topology()
    tuple_to_state = {t.__getstate__(): i + 1 for i, t in enumerate(tm.tuples)}
    state2id = tm.state2id
    cache: dict[tuple, int] = {}
    out = {}
    for utt, tids in alignments.items():
        tids = np.asarray(tids)
        segs = phone_segments(tids, oi["is_start"], oi["phone"])
        phones = [p for p, _, _ in segs]
        new_tids = np.empty_like(tids)
        for k, (p, s, e) in enumerate(segs):
            window = tuple(phones[k + j - centre] if 0 <= k + j - centre < len(phones) else 0
                           for j in range(width))
            for t in range(s, e):
                tid = int(tids[t])
                key = (window, int(oi["hmm_state"][tid]), int(oi["trans_index"][tid]))
                nt = cache.get(key)
                if nt is None:
                    st = topo.topology_for_phone(p)[key[1]]
                    ok1, fwd = ctx.compute(list(window), st.forward_pdf_class)
                    ok2, slp = ctx.compute(list(window), st.self_loop_pdf_class)
                    ts = tuple_to_state.get((p, key[1], fwd, slp)) if ok1 and ok2 else None
                    if ts is None:
                        raise UserFacingError(f"{utt}: cannot convert the alignment (no transition state for "
                                              f"phone {p} state {key[1]} in context {window})")
                    nt = cache[key] = state2id[ts] + key[2]
                new_tids[t] = nt
        out[utt] = new_tids
    return out


def train_tri(lang: Lang, feat_dir: str | os.PathLike, transcripts: dict[str, list[int]], mono: GmmHmm,
              mono_alignments: dict[str, np.ndarray], cfg: GmmTrainConfig | None = None
              ) -> tuple[GmmHmm, dict[str, np.ndarray], TrainReport]:
    """Train a triphone GMM-HMM from a monophone system's alignments (steps/train_deltas.sh)."""
    import kaldi_hmm_gmm as khg

    from asrdistill.tree import Root, build_tree, make_questions
    from asrdistill.tree.kaldi_io import to_context_dependency
    cfg = cfg or tri_config()
    report = TrainReport()
    feat_dir = str(feat_dir)
    t0 = time.time()
    stats = accumulate_tree_stats(mono, feat_dir, mono_alignments)
    report.stages["tree_stats"] = time.time() - t0
    t0 = time.time()
    questions = make_questions(stats, lang.sets, lang.extra_questions)
    roots = [Root(tuple(sorted(ids)), shared=sh, split=sp) for sh, sp, ids in lang.roots]
    tree, tree_info = build_tree(stats, questions, roots, lang.num_pdf_classes, cfg.num_leaves,
                                 min_count=cfg.tree_min_count, cluster_thresh=cfg.cluster_thresh, return_info=True)
    report.stages["build_tree"] = time.time() - t0
    report.stages["tree_splitting"] = float((tree_info or {}).get("seconds_split", 0.0))  # timings: not in the model
    log.info("tree: %d pdfs", tree.num_pdfs)
    t0 = time.time()
    ctx = to_context_dependency(tree)
    topo = lang.topology()
    tm = khg.TransitionModel(ctx_dep=ctx, hmm_topo=topo)
    counts, means, variances = tree.pdf_stats(stats)
    am = khg.AmDiagGmm()
    for p in range(tree.num_pdfs):
        am.add_pdf(single_gaussian(means[p], variances[p]))
    model = GmmHmm(lang.topo_text, ctx, tm, am, list(lang.phones), dict(mono.feature_config),
                   {"kind": "tri", "num_pdfs": int(tree.num_pdfs),
                    "tree": {k: v for k, v in (tree_info or {}).items()
                             if isinstance(v, (int, float, str)) and not k.startswith("seconds")}})
    alignments = convert_alignments(mono_alignments, mono, model)
    report.stages["init_convert"] = time.time() - t0
    t0 = time.time()
    alignments = _em(model, lang, feat_dir, [u for u in sorted(mono_alignments)], transcripts, alignments, cfg,
                     report, model.num_pdfs, None, "tri")
    report.stages["em"] = time.time() - t0
    model.info["config"] = cfg.model_options()
    return model, alignments, report


def transcripts_from_data_dir(lang: Lang, data_dir: str | os.PathLike) -> dict[str, list[int]]:
    """Read and validate a Kaldi data dir's ``text`` and map it to word ids (see :func:`transcripts_to_ids`)."""
    from asrdistill.data.kaldi_dir import read_data_dir
    from asrdistill.lang.prepare import transcripts_to_ids
    dd = read_data_dir(data_dir, allow_pipes=True, check_audio_exists=False)
    if not dd.text:
        raise DataDirError(str(Path(data_dir) / "text"), None, "no transcripts (text file missing or empty)")
    return transcripts_to_ids(lang, dd.text, Path(data_dir) / "text")
