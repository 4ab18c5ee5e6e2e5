"""One pass over the training data: align (Viterbi, equal or given) and accumulate GMM + transition statistics.

Work is split into chunks of utterances processed by ``nj`` worker processes (``nj=1`` runs in-process) or the
workers of a Dask scheduler (:mod:`asrdistill.parallel`); the chunks and the order in which their statistics
are added depend only on the utterance list, so a pass gives bit-identical statistics for any ``nj`` and
either executor.
Each worker receives the model as bytes (:meth:`GmmHmm.to_bytes`, sent once per worker and pass as the
executor's shared object), opens the frame store itself (cluster workers: at the same path), compiles
each utterance's training graph (kaldi-hmm-gmm ``TrainingGraphCompiler`` on ``L.fst``, structure only;
transition probabilities are added at alignment time with ``add_transition_probs``, as Kaldi's
``gmm-align-compiled`` does) and aligns with ``align_utterance_wrapper`` + ``DecodableAmDiagGmmScaled``.

GMM statistics (per pdf and Gaussian: occupancy, sum x, sum x^2 under the Gaussian posteriors, as Kaldi's
``gmm-acc-stats-ali``) are computed with numpy, grouping a chunk's frames by pdf (:func:`gmm_stats`): the
same numbers as ``AccumAmDiagGmm.accumulate_for_gmm`` at several times its speed. They travel back as numpy
arrays. kaldi-hmm-gmm's ``AccumAmDiagGmm.get_acc`` returns a copy, so the parent re-creates each Gaussian's
statistics exactly by accumulating two weighted points mu +- sigma (same count, mean and variance) with
``accumulate_for_gaussian`` (:func:`stats_to_accumulator`) before ``mle_am_diag_gmm_update``.
"""
from __future__ import annotations

import contextlib
import ctypes
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from asrdistill.utils import get_logger

log = get_logger(__name__)

_STATS_BUFFER_FRAMES = 100_000
MIN_CHUNK_UTTS = 20   # a pass splits its utterances into at most MAX_CHUNKS jobs of at least this many
MAX_CHUNKS = 64


@dataclass
class PassConfig:
    mode: str = "align"             # "align" (Viterbi), "equal" (flat start) or "fixed" (given alignments)
    beam: float = 10.0
    retry_beam: float = 40.0
    careful: bool = False
    acoustic_scale: float = 0.1
    transition_scale: float = 1.0
    self_loop_scale: float = 0.1
    boost_silence: float = 1.0      # multiply silence pdfs' likelihoods during alignment (gmm-boost-silence)
    accumulate: bool = True
    seed: int = 0


@dataclass
class _Job:
    feat_dir: str
    lexicon_fst: str
    disambig: list[int]
    silence_phones: list[int]
    utts: list[str]
    transcripts: list[list[int]] | None
    fixed: list[np.ndarray] | None
    cfg: PassConfig


@dataclass
class PassResult:
    alignments: dict[str, np.ndarray] = field(default_factory=dict)   # utt -> transition-ids (int32)
    failed: list[str] = field(default_factory=list)
    align_like: float = 0.0         # total alignment log-likelihood (mode "align")
    acc_like: float = 0.0           # total GMM log-likelihood of the accumulated frames
    num_frames: int = 0
    trans_stats: np.ndarray | None = None
    gmm_occ: list[np.ndarray] | None = None   # per pdf [G]
    gmm_x: list[np.ndarray] | None = None     # per pdf [G, D]
    gmm_x2: list[np.ndarray] | None = None    # per pdf [G, D]
    seconds: float = 0.0

    @property
    def pdf_occs(self) -> np.ndarray:
        return np.asarray([o.sum() for o in self.gmm_occ], dtype=np.float32)


def boosted_am(am: Any, trans_model: Any, silence_phones: Sequence[int], boost: float) -> Any:
    """A copy of ``am`` whose silence pdfs' Gaussian weights are multiplied by ``boost`` (Kaldi's
    gmm-boost-silence), used for alignment only."""
    import kaldi_hmm_gmm as khg
    if boost == 1.0 or not silence_phones:
        return am
    ok, sil_pdfs = khg.get_pdfs_for_phones(trans_model, list(silence_phones))
    sil = set(sil_pdfs)
    new = khg.AmDiagGmm()
    for pdf in range(am.num_pdfs):
        gmm = am.get_pdf(pdf)
        if pdf in sil:
            gmm = khg.DiagGmm(gmm)
            gmm.set_weights(np.asarray(gmm.weights, dtype=np.float32) * boost)
            gmm.compute_gconsts()
        new.add_pdf(gmm)
    return new


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run numpy's OpenBLAS with one thread inside the block (restored afterwards): the statistics' many
    small matrix products run ~4x faster without thread start-up, and nj processes do not oversubscribe
    the cores. Does nothing if the OpenBLAS controls cannot be found."""
    lib = None
    try:
        libdir = Path(np.__file__).resolve().parent.parent / "numpy.libs"
        for cand in sorted(libdir.glob("*openblas*")):
            dll = ctypes.CDLL(str(cand))
            for suffix in ("64_", "_64_", ""):
                get = getattr(dll, f"scipy_openblas_get_num_threads{suffix}", None) or \
                    getattr(dll, f"openblas_get_num_threads{suffix}", None)
                put = getattr(dll, f"scipy_openblas_set_num_threads{suffix}", None) or \
                    getattr(dll, f"openblas_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    lib = (get, put)
                    break
            if lib:
                break
    except OSError:
        lib = None
    if lib is None:
        yield
        return
    get, put = lib
    before = int(get())
    put(1)
    try:
        yield
    finally:
        put(before)


def gmm_params(am: Any) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per pdf (gconsts [G], means * inv_vars [G, D], inv_vars [G, D]) as float64, for :func:`gmm_stats`."""
    out = []
    for pdf in range(am.num_pdfs):
        g = am.get_pdf(pdf)
        out.append((np.asarray(g.gconsts, dtype=np.float64), np.asarray(g.means_invvars, dtype=np.float64),
                    np.asarray(g.inv_vars, dtype=np.float64)))
    return out


def gmm_stats(params: list[tuple[np.ndarray, np.ndarray, np.ndarray]], feats: np.ndarray, pdfs: np.ndarray
              ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], float]:
    """Posterior-weighted statistics of frames ``feats`` [N, D] aligned to ``pdfs`` [N]: per pdf the
    occupancy [G], sum x [G, D] and sum x^2 [G, D] of each Gaussian, and the total log-likelihood.
    Log-likelihoods as Kaldi's DiagGmm: gconst + x . (mean / var) - 0.5 x^2 . (1 / var)."""
    dim = feats.shape[1] if feats.ndim == 2 else 0
    occ = [np.zeros(len(gc)) for gc, _, _ in params]
    sx = [np.zeros((len(gc), dim)) for gc, _, _ in params]
    sx2 = [np.zeros((len(gc), dim)) for gc, _, _ in params]
    total = 0.0
    if len(pdfs) == 0:
        return occ, sx, sx2, total
    order = np.argsort(pdfs, kind="stable")
    sorted_pdfs = pdfs[order]
    starts = np.flatnonzero(np.r_[True, sorted_pdfs[1:] != sorted_pdfs[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for b, e in zip(starts, ends):
        pdf = int(sorted_pdfs[b])
        x = feats[order[b:e]].astype(np.float64)
        x2 = x * x
        gc, mi, iv = params[pdf]
        ll = gc + x @ mi.T - 0.5 * (x2 @ iv.T)
        mx = ll.max(axis=1, keepdims=True)
        post = np.exp(ll - mx)
        norm = post.sum(axis=1, keepdims=True)
        post /= norm
        total += float((mx + np.log(norm)).sum())
        occ[pdf] += post.sum(axis=0)
        sx[pdf] += post.T @ x
        sx2[pdf] += post.T @ x2
    return occ, sx, sx2, total


def _run_job(job: _Job, model_bytes: bytes) -> PassResult:
    import kaldi_hmm_gmm as khg
    import kaldifst

    from asrdistill.hmm.cepstra import GmmFeatures
    from asrdistill.hmm.model import GmmHmm
    from asrdistill.features.store import FrameStore

    t0 = time.time()
    cfg = job.cfg
    model = GmmHmm.from_bytes(model_bytes)
    tm, am = model.trans_model, model.am
    store = FrameStore(job.feat_dir)
    feat_fn = GmmFeatures(store.dim, **{k: v for k, v in model.feature_config.items()
                                        if k in ("num_ceps", "delta_order")})
    tid2pdf = model.tid2pdf()
    res = PassResult(trans_stats=np.zeros(tm.num_transition_ids + 1))
    compiler = None
    if cfg.mode != "fixed":
        lex = kaldifst.StdVectorFst.read(job.lexicon_fst)
        opts = khg.TrainingGraphCompilerOptions()
        opts.transition_scale = 0.0
        opts.self_loop_scale = 0.0
        compiler = khg.TrainingGraphCompiler(tm, model.ctx_dep, lex, list(job.disambig), opts)
    align_am = boosted_am(am, tm, job.silence_phones, cfg.boost_silence) if cfg.mode == "align" else am
    align_cfg = khg.AlignConfig(beam=cfg.beam, retry_beam=cfg.retry_beam, careful=cfg.careful)
    acc_feats: list[np.ndarray] = []
    acc_pdfs: list[np.ndarray] = []
    params = gmm_params(am) if cfg.accumulate else None

    def flush() -> None:  # fold the buffered frames into the statistics (bounded memory)
        if not acc_feats:
            return
        with single_threaded_blas():
            occ, sx, sx2, like = gmm_stats(params, np.concatenate(acc_feats), np.concatenate(acc_pdfs))
        if res.gmm_occ is None:
            res.gmm_occ, res.gmm_x, res.gmm_x2 = occ, sx, sx2
        else:
            for p in range(len(occ)):
                res.gmm_occ[p] += occ[p]
                res.gmm_x[p] += sx[p]
                res.gmm_x2[p] += sx2[p]
        res.acc_like += like
        acc_feats.clear()
        acc_pdfs.clear()
    for i, utt in enumerate(job.utts):
        feats = feat_fn(store.get(utt))
        num_frames = feats.shape[0]
        tids = None
        if cfg.mode == "fixed":
            tids = np.asarray(job.fixed[i], dtype=np.int32)
            if len(tids) != num_frames:
                log.warning("%s: alignment has %d frames, features %d; skipped", utt, len(tids), num_frames)
                res.failed.append(utt)
                continue
        else:
            try:
                graph = compiler.compile_graph_from_text(job.transcripts[i])
            except RuntimeError as err:  # a Kaldi error in graph compilation: leave the utterance out
                log.warning("%s: cannot compile its training graph (%s); left out", utt, err)
                res.failed.append(utt)
                continue
            if cfg.mode == "equal":
                seed = (cfg.seed + zlib.crc32(utt.encode())) % (2 ** 31)  # same result for any nj
                ok, path = kaldifst.equal_align(graph, num_frames, seed)
                if ok:
                    ok, isyms, _, _ = kaldifst.get_linear_symbol_sequence(path)
                    tids = np.asarray(isyms, dtype=np.int32)
                    ok = len(tids) == num_frames
                if not ok:
                    log.warning("%s: equal alignment failed (%d frames too few for the transcript?)",
                                utt, num_frames)
                    res.failed.append(utt)
                    continue
            else:
                khg.add_transition_probs(trans_model=tm, disambig_syms=[], transition_scale=cfg.transition_scale,
                                         self_loop_scale=cfg.self_loop_scale, fst=graph)
                decodable = khg.DecodableAmDiagGmmScaled(align_am, tm, feats, cfg.acoustic_scale)
                out = khg.align_utterance_wrapper(align_cfg, utt, cfg.acoustic_scale, graph, decodable,
                                                  0, 0, 0, 0.0, 0)
                if out[0] != 1 or len(out[5]) != num_frames:
                    log.warning("%s: failed to align (beam %g, retry beam %g); left out", utt, cfg.beam,
                                cfg.retry_beam)
                    res.failed.append(utt)
                    continue
                tids = np.asarray(out[5], dtype=np.int32)
                res.align_like += float(out[3])
        res.alignments[utt] = tids
        res.num_frames += num_frames
        if cfg.accumulate:
            acc_feats.append(feats)
            acc_pdfs.append(tid2pdf[tids])
            res.trans_stats += np.bincount(tids, minlength=len(res.trans_stats))
            if sum(len(f) for f in acc_pdfs) >= _STATS_BUFFER_FRAMES:
                flush()
    if cfg.accumulate:
        flush()
        if res.gmm_occ is None:
            res.gmm_occ, res.gmm_x, res.gmm_x2, _ = gmm_stats(params, np.zeros((0, feat_fn.dim)), np.zeros(0, int))
    res.seconds = time.time() - t0
    return res


def _merge(results: list[PassResult]) -> PassResult:
    out = PassResult()
    for r in results:
        out.alignments.update(r.alignments)
        out.failed += r.failed
        out.align_like += r.align_like
        out.acc_like += r.acc_like
        out.num_frames += r.num_frames
        out.seconds += r.seconds
        if r.trans_stats is not None:
            out.trans_stats = r.trans_stats.copy() if out.trans_stats is None else out.trans_stats + r.trans_stats
        if r.gmm_occ is not None:
            if out.gmm_occ is None:
                out.gmm_occ = [o.copy() for o in r.gmm_occ]
                out.gmm_x = [x.copy() for x in r.gmm_x]
                out.gmm_x2 = [x.copy() for x in r.gmm_x2]
            else:
                for p in range(len(out.gmm_occ)):
                    out.gmm_occ[p] += r.gmm_occ[p]
                    out.gmm_x[p] += r.gmm_x[p]
                    out.gmm_x2[p] += r.gmm_x2[p]
    out.failed.sort()
    return out


def stats_to_accumulator(am: Any, res: PassResult) -> Any:
    """An ``AccumAmDiagGmm`` for ``am`` holding exactly the statistics of ``res`` (see module doc)."""
    import kaldi_hmm_gmm as khg
    acc = khg.AccumAmDiagGmm()
    acc.init(am, int(khg.GmmUpdateFlags.kGmmAll.value))
    for pdf, occ in enumerate(res.gmm_occ):
        for g in np.nonzero(occ > 0)[0]:
            n = occ[g]
            mu = res.gmm_x[pdf][g] / n
            sd = np.sqrt(np.maximum(res.gmm_x2[pdf][g] / n - mu * mu, 0.0))
            acc.accumulate_for_gaussian(am, (mu + sd).astype(np.float32), pdf, int(g), n / 2)
            acc.accumulate_for_gaussian(am, (mu - sd).astype(np.float32), pdf, int(g), n / 2)
    return acc


def run_pass(model: Any, feat_dir: str, utts: Sequence[str], cfg: PassConfig, *,
             transcripts: dict[str, list[int]] | None = None, lexicon_fst: str | None = None,
             disambig: Sequence[int] = (), silence_phones: Sequence[int] = (),
             fixed: dict[str, np.ndarray] | None = None, nj: int = 1, desc: str = "align",
             scheduler=None) -> PassResult:
    """Run one pass over ``utts`` with ``nj`` processes (or the workers of the Dask ``scheduler``); returns
    merged alignments and statistics."""
    from tqdm import tqdm

    from asrdistill.errors import UserFacingError
    from asrdistill.features.store import FrameStore

    utts = list(utts)
    store = FrameStore(feat_dir)
    fbank_dim = model.feature_config.get("fbank_dim")
    if fbank_dim is not None and int(fbank_dim) != store.dim:
        raise UserFacingError(f"{feat_dir}: features have {store.dim} dims but the model was trained on "
                              f"{fbank_dim}-dim fbank")
    missing = [u for u in utts if u not in store]
    if missing:
        raise UserFacingError(f"{feat_dir}: no features for {len(missing)} utterances, e.g. {missing[0]}")
    model_bytes = model.to_bytes()
    # The chunks depend on the utterances only, never on nj, and their statistics are summed in chunk order:
    # float sums in another grouping or order would differ in the last bits, and so would every model after.
    num_chunks = max(1, min(MAX_CHUNKS, len(utts) // MIN_CHUNK_UTTS))
    chunks = [utts[i::num_chunks] for i in range(num_chunks)] if utts else []
    # absolute paths: a cluster worker runs in a directory of its own
    jobs = [_Job(str(Path(feat_dir).absolute()), str(Path(lexicon_fst).absolute()) if lexicon_fst else "",
                 list(disambig),
                 list(silence_phones), chunk,
                 [transcripts[u] for u in chunk] if transcripts is not None else None,
                 [fixed[u] for u in chunk] if fixed is not None else None, cfg) for chunk in chunks]
    t0 = time.time()
    results: list[PassResult] = []
    from asrdistill.parallel import make_executor

    executor = make_executor(min(nj, len(jobs)) if jobs else 1, scheduler, start_method="fork")
    with tqdm(total=len(utts), desc=desc, unit="utt", leave=False, mininterval=2.0) as bar:
        # results in job order, not completion order: the statistics are float sums, and adding the chunks
        # in completion order made every run's model differ in the last bits.
        for r in executor.map(_run_job, jobs, shared=model_bytes):
            results.append(r)
            bar.update(len(r.alignments) + len(r.failed))
    merged = _merge(results)
    merged.seconds = time.time() - t0
    if merged.failed:
        log.warning("%s: %d of %d utterances failed: %s%s", desc, len(merged.failed), len(utts),
                    " ".join(merged.failed[:10]), " ..." if len(merged.failed) > 10 else "")
    return merged
