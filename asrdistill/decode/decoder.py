"""Viterbi beam search over HCLG with Kaldi's LatticeFasterDecoder (best path), spread over processes.

Acoustic scores come from either
  * a GMM: ``DecodableAmDiagGmmScaled(am, trans_model, feats, acoustic_scale)``, or
  * a matrix of per-frame pdf log-likelihoods ``[T, num_pdfs]`` (a DNN's log-softmax minus log-prior, an
    ensemble's or a distilled model's), scaled by the acoustic scale and expanded to transition-id
    columns for ``DecodableCtc`` (which reads label ``i`` from column ``i - 1``): column ``j`` holds the
    pdf of transition-id ``j + 1`` (``trans_model.transition_id_to_pdf_array()[1:]``).

The network's forward pass is not done here: callers pass a mapping utt -> matrix, or a callable
``utt -> matrix`` evaluated in this process (e.g. batched on a GPU) while worker processes (or the workers
of a Dask scheduler, :mod:`asrdistill.parallel`) decode, one utterance per job, results in utterance order.

Since HCLG has the LM built in, the acoustic scale is the inverse LM weight. Several acoustic scales can
be decoded in one pass over the data (each worker decodes every matrix once per scale), which is how
:func:`sweep_decode` picks the scale on dev without repeating the forward pass.
Real-time factor = decode seconds / audio seconds, frames being 10 ms.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from asrdistill.errors import UserFacingError
from asrdistill.utils import JsonConfig, get_logger, write_text_atomic

log = get_logger(__name__)

FRAME_SHIFT = 0.01
LoglikeSource = Mapping[str, np.ndarray] | Callable[[str], np.ndarray]


@dataclass
class DecodeOptions:
    """Search options (Kaldi's LatticeFasterDecoderConfig) and the acoustic scale."""

    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 200
    lattice_beam: float = 6.0
    acoustic_scale: float = 0.1
    word_ins_penalty: float = 0.0   # graph cost added per output word (Kaldi's local/score.sh wip, same units)
    allow_partial: bool = True      # output the best partial path when no final state is reached


@dataclass
class UttResult:
    utt: str
    words: list[int]
    likelihood: float               # total log-likelihood of the best path (scaled acoustics + graph)
    num_frames: int
    seconds: float                  # decode time
    ok: bool                        # False: the decoder produced no path
    alignment: list[int] | None = None   # transition-ids per frame (kept when asked)


@dataclass
class DecodeResult:
    """Decoding of a set of utterances at one acoustic scale."""

    acoustic_scale: float
    utts: dict[str, UttResult]
    words: list[str]                 # id -> word (graph's words.txt)
    word_ins_penalty: float = 0.0
    wall_seconds: float = 0.0
    stats: dict = field(default_factory=dict)     # counts that depend only on the data and the result
    timing: dict = field(default_factory=dict)    # seconds, real-time factors (kept out of decode.json)

    def text(self) -> dict[str, str]:
        return {u: " ".join(self.words[w] for w in r.words) for u, r in sorted(self.utts.items())}

    def write_text(self, path: str | os.PathLike) -> None:
        """Kaldi-style ``text``: ``utt word word ...`` per line, sorted."""
        write_text_atomic(path, "".join(f"{u} {t}".rstrip() + "\n" for u, t in self.text().items()))


def read_words(path: str | os.PathLike) -> list[str]:
    from asrdistill.lm.gfst import read_symbol_table
    table = read_symbol_table(path)
    words = [""] * (max(table.values()) + 1)
    for w, i in table.items():
        words[i] = w
    return words


def expand_to_transition_ids(loglikes: np.ndarray, tid2pdf: np.ndarray, scale: float) -> np.ndarray:
    """[T, num_pdfs] pdf log-likelihoods -> [T, num_transition_ids] for DecodableCtc, times ``scale``.

    ``tid2pdf`` is ``trans_model.transition_id_to_pdf_array()`` (index 0 a dummy)."""
    return np.ascontiguousarray(loglikes[:, tid2pdf[1:]] * np.float32(scale), dtype=np.float32)


def read_graph(graph: str | os.PathLike):
    """The ``StdVectorFst`` of ``graph`` (``HCLG.fst`` or a graph dir holding one), checked non-empty."""
    from asrdistill.decode.graph import read_fst
    path = Path(graph)
    if path.is_dir():
        path = path / "HCLG.fst"
    return read_fst(path, "decoding graph", " (run `asrdistill make-graph`)")


class GraphDecoder:
    """One process's decoder: the graph and models are loaded once, then utterances are decoded."""

    def __init__(self, graph: str | os.PathLike, trans_model, options: DecodeOptions, am=None):
        import kaldi_hmm_gmm as khg
        self.vector = read_graph(graph)
        self._graphs: dict[float, object] = {}  # word insertion penalty -> ConstFst
        self.trans_model = trans_model
        self.am = am
        self.options = options
        self.tid2pdf = np.asarray(trans_model.transition_id_to_pdf_array(), dtype=np.int64)
        self.num_pdfs = int(trans_model.num_pdfs)
        self.config = khg.LatticeFasterDecoderConfig(beam=options.beam, max_active=options.max_active,
                                                     min_active=options.min_active,
                                                     lattice_beam=options.lattice_beam,
                                                     determinize_lattice=False)

    def decoder(self, word_ins_penalty: float | None = None):
        """A new decoder over HCLG with ``word_ins_penalty`` per word (one graph copy per penalty, kept). A decoder
        is never reused across utterances: Kaldi's token lists keep their order from earlier utterances, so ties
        at the max-active cutoff would depend on which utterances a worker happened to decode before."""
        import kaldi_hmm_gmm as khg
        import kaldifst

        from asrdistill.decode.graph import add_word_insertion_penalty
        pen = self.options.word_ins_penalty if word_ins_penalty is None else float(word_ins_penalty)
        if pen not in self._graphs:
            fst = self.vector if pen == 0.0 else add_word_insertion_penalty(self.vector, pen)
            self._graphs[pen] = kaldifst.StdConstFst(fst)  # faster to search (as Kaldi's fstconvert --fst_type=const)
        return khg.LatticeFasterDecoderStdConstFst(self._graphs[pen], self.config)

    def _run(self, utt: str, decodable, num_frames: int, keep_alignment: bool,
             word_ins_penalty: float | None = None) -> UttResult:
        import kaldi_hmm_gmm as khg
        decoder = self.decoder(word_ins_penalty)
        t0 = time.perf_counter()
        ok, alignment, words, likelihood = khg.decode_utterance_lattice_faster(
            decoder, decodable, self.trans_model, utt, self.options.allow_partial)
        secs = time.perf_counter() - t0
        if not ok:
            log.warning("utterance %s: no output from decoding (%d frames)", utt, num_frames)
        return UttResult(utt, [int(w) for w in words] if ok else [], float(likelihood) if ok else float("-inf"),
                         num_frames, secs, bool(ok), list(alignment) if keep_alignment and ok else None)

    def decode_loglikes(self, utt: str, loglikes: np.ndarray, acoustic_scale: float | None = None,
                        keep_alignment: bool = False, word_ins_penalty: float | None = None) -> UttResult:
        import kaldi_hmm_gmm as khg
        loglikes = np.asarray(loglikes)
        if loglikes.ndim != 2 or loglikes.shape[1] != self.num_pdfs:
            raise UserFacingError(f"utterance {utt}: log-likelihoods of shape {loglikes.shape}, "
                                  f"expected [frames, {self.num_pdfs}] (pdfs of the transition model)")
        if not np.all(np.isfinite(loglikes)):
            raise UserFacingError(f"utterance {utt}: log-likelihoods contain NaN or inf")
        scale = self.options.acoustic_scale if acoustic_scale is None else acoustic_scale
        decodable = khg.DecodableCtc(expand_to_transition_ids(loglikes, self.tid2pdf, scale))
        return self._run(utt, decodable, len(loglikes), keep_alignment, word_ins_penalty)

    def decode_feats(self, utt: str, feats: np.ndarray, acoustic_scale: float | None = None,
                     keep_alignment: bool = False, word_ins_penalty: float | None = None) -> UttResult:
        import kaldi_hmm_gmm as khg
        if self.am is None:
            raise UserFacingError("GMM decoding needs an acoustic model (am)")
        scale = self.options.acoustic_scale if acoustic_scale is None else acoustic_scale
        decodable = khg.DecodableAmDiagGmmScaled(self.am, self.trans_model,
                                                 np.ascontiguousarray(feats, dtype=np.float32), scale)
        return self._run(utt, decodable, len(feats), keep_alignment, word_ins_penalty)


class LatticeDecoder:
    """One process's lattice decoder: ``kaldi_decoder.LatticeSimpleDecoder`` over HCLG (no word insertion penalty
    in the graph: :mod:`asrdistill.decode.lattice` adds it when rescoring), giving each utterance's raw lattice
    with graph and acoustic costs apart. GMM features are turned into pdf log-likelihood matrices first
    (:class:`asrdistill.decode.sources.GmmLoglikes`)."""

    def __init__(self, graph: str | os.PathLike, trans_model, options: DecodeOptions, am=None):
        import kaldi_decoder
        import kaldifst
        self.const = kaldifst.StdConstFst(read_graph(graph))
        self.config = kaldi_decoder.LatticeSimpleDecoderConfig(beam=options.beam, lattice_beam=options.lattice_beam,
                                                               determinize_lattice=False)
        self.options = options
        self.tid2pdf = np.asarray(trans_model.transition_id_to_pdf_array(), dtype=np.int64)
        self.num_pdfs = int(trans_model.num_pdfs)
        self.gmm = None
        if am is not None:
            from asrdistill.decode.sources import GmmLoglikes
            self.gmm = GmmLoglikes(am)

    def lattice(self, utt: str, data: np.ndarray, acoustic_scale: float, kind: str = "loglikes"):
        """``(UttResult, LatticeArrays)`` of one utterance decoded at ``acoustic_scale``; the UttResult holds the
        decoder's own best path (``likelihood``: minus its cost)."""
        import kaldi_decoder
        import kaldifst

        from asrdistill.decode.lattice import lattice_arrays
        loglikes = self.gmm(data) if kind == "feats" and self.gmm is not None else np.asarray(data)
        if loglikes.ndim != 2 or loglikes.shape[1] != self.num_pdfs:
            raise UserFacingError(f"utterance {utt}: log-likelihoods of shape {loglikes.shape}, "
                                  f"expected [frames, {self.num_pdfs}] (pdfs of the transition model)")
        if not np.all(np.isfinite(loglikes)):
            raise UserFacingError(f"utterance {utt}: log-likelihoods contain NaN or inf")
        t0 = time.perf_counter()
        decodable = kaldi_decoder.DecodableCtc(expand_to_transition_ids(loglikes, self.tid2pdf, acoustic_scale))
        decoder = kaldi_decoder.LatticeSimpleDecoder(self.const, self.config)  # new per utterance, as above
        decoder.decode(decodable)
        ok, lat = decoder.get_raw_lattice()
        ok_best, best = decoder.get_best_path()
        secs = time.perf_counter() - t0
        words, like = [], float("-inf")
        if ok and ok_best:
            _, _, words, weight = kaldifst.get_linear_symbol_sequence(best)
            like = -(float(weight.value1) + float(weight.value2))
        else:
            log.warning("utterance %s: no output from decoding (%d frames)", utt, len(loglikes))
        res = UttResult(utt, [int(w) for w in words], like, len(loglikes), secs, bool(ok and ok_best))
        return res, lattice_arrays(lat)


# --- jobs for worker processes (asrdistill.parallel executors) -------------------------------------------
@dataclass(frozen=True)
class DecoderSpec:
    """What a worker needs to build its decoder (sent to each worker once): the graph path, the transition
    model's and GMMs' bytes, the options and the decoder kind ("best": LatticeFasterDecoder best path;
    "lattice": LatticeSimpleDecoder raw lattices). ``token`` names it in the per-worker cache."""

    graph: str
    tm_state: object       # TransitionModel.__getstate__() (the pybind state; pickles)
    am_state: object
    options: DecodeOptions
    kind: str = "best"
    token: str = ""

    @classmethod
    def make(cls, graph, trans_model, options: DecodeOptions, am=None, kind: str = "best") -> "DecoderSpec":
        import hashlib
        import pickle  # dumping only (a digest of what the workers get); nothing is loaded with pickle
        tm_state = trans_model.__getstate__()
        am_state = am.__getstate__() if am is not None else None
        # absolute: cluster workers run in directories of their own. The graph file's size and mtime are in the
        # token: a long-lived (Dask) worker must not reuse its cached decoder after the graph was rebuilt.
        graph = Path(graph).absolute()
        hclg = graph / "HCLG.fst" if graph.is_dir() else graph
        stamp = (hclg.stat().st_size, hclg.stat().st_mtime_ns) if hclg.is_file() else None
        h = hashlib.sha256(pickle.dumps((str(graph), stamp, tm_state, am_state, repr(options), kind), protocol=4))
        return cls(str(graph), tm_state, am_state, options, kind, h.hexdigest())

    def build(self):
        import kaldi_hmm_gmm as khg
        tm = khg.TransitionModel.__new__(khg.TransitionModel)
        tm.__setstate__(self.tm_state)
        am = None
        if self.am_state is not None:
            am = khg.AmDiagGmm.__new__(khg.AmDiagGmm)
            am.__setstate__(self.am_state)
        if self.kind == "lattice":
            return LatticeDecoder(self.graph, tm, self.options, am)
        return GraphDecoder(self.graph, tm, self.options, am)


def _worker_decoder(spec: DecoderSpec):
    from asrdistill.parallel import worker_state
    return worker_state(("decoder", spec.token), spec.build)


Setting = tuple[float, float]  # (acoustic scale, word insertion penalty)


def _decode_settings(dec: GraphDecoder, job) -> list[UttResult]:
    utt, kind, data, settings, keep = job
    fn = dec.decode_loglikes if kind == "loglikes" else dec.decode_feats
    return [fn(utt, data, s, keep, p) for s, p in settings]


def decode_job(job: tuple[str, str, np.ndarray, Sequence[Setting], bool], spec: DecoderSpec) -> list[UttResult]:
    """One utterance at every setting of the job, by this worker's (cached) :class:`GraphDecoder`."""
    return _decode_settings(_worker_decoder(spec), job)


def lattice_job(job: tuple[str, str, np.ndarray, float, tuple | None], spec: DecoderSpec):
    """One utterance's raw lattice at the job's acoustic scale, by this worker's :class:`LatticeDecoder`:
    ``(UttResult of the decoder's own best path, LatticeArrays, words)``. With a grid ``(factors, penalties)``
    in the job, ``words`` holds the lattice's best path's words at each of its points (rescored here, in the
    worker, while the other workers decode), else None."""
    from asrdistill.decode.lattice import best_paths
    utt, kind, data, scale, grid = job
    res, la = _worker_decoder(spec).lattice(utt, data, scale, kind)
    words = None if grid is None else [p.words for p in best_paths(la, *grid)]
    return res, la, words


def _executor(nj: int, scheduler):
    from asrdistill.parallel import make_executor
    return make_executor(nj, scheduler, start_method="spawn")  # fresh interpreters: no forked OpenFst state


def _jobs(utts: Sequence[str], source, kind: str, scales: Sequence[Setting], keep: bool
          ) -> Iterator[tuple[str, str, np.ndarray, Sequence[Setting], bool]]:
    for utt in utts:
        yield utt, kind, _fetch(source, utt, kind), scales, keep


def _fetch(source, utt: str, kind: str) -> np.ndarray:
    try:
        data = source(utt) if callable(source) else source[utt]
    except KeyError:
        raise UserFacingError(f"utterance {utt}: no {'log-likelihoods' if kind == 'loglikes' else 'features'}")
    return np.asarray(data, dtype=np.float32)


def _stats(res: Mapping[str, UttResult]) -> tuple[dict, dict]:
    """(stats that depend only on the data and the result, timings)."""
    frames = sum(r.num_frames for r in res.values())
    audio = frames * FRAME_SHIFT
    dsecs = sum(r.seconds for r in res.values())
    stats = {"utterances": len(res), "frames": frames, "audio_seconds": audio,
             "failed": sum(not r.ok for r in res.values()), "empty": sum(not r.words for r in res.values())}
    timing = {"decode_seconds": dsecs, "rtf": dsecs / audio if audio else 0.0}
    return stats, timing


def decode(graph: str | os.PathLike, trans_model, source: LoglikeSource, utts: Sequence[str] | None = None,
           options: DecodeOptions | None = None, acoustic_scales: Sequence[float] | None = None,
           am=None, nj: int = 1, keep_alignment: bool = False, progress: bool = True,
           chunk: int = 4, word_ins_penalties: Sequence[float] | None = None, scheduler=None) -> list[DecodeResult]:
    """Decode utterances with HCLG in ``graph`` (dir or HCLG.fst path); one result per acoustic scale
    and word insertion penalty (``word_ins_penalties`` defaults to ``[options.word_ins_penalty]``; each
    penalty costs one graph copy in memory per process).

    ``source``: utt -> [T, num_pdfs] pdf log-likelihoods (mapping or callable; ``am=None``), or
    utt -> [T, D] features with ``am`` an AmDiagGmm (GMM decoding). ``acoustic_scales`` defaults to
    ``[options.acoustic_scale]``. ``nj`` worker processes (or the workers of the Dask ``scheduler``) each
    load the graph once; with ``nj=1`` decoding runs in this process; a callable ``source`` is always called
    in this process (e.g. a batched GPU forward pass), at most ``chunk`` utterances per worker ahead of the
    decoders.
    """
    from tqdm import tqdm

    from asrdistill.parallel import LocalExecutor

    options = options or DecodeOptions()
    scales = [(float(s), float(p)) for s in (acoustic_scales or [options.acoustic_scale])
              for p in (word_ins_penalties or [options.word_ins_penalty])]
    if utts is None:
        if callable(source):
            raise UserFacingError("decode: utts must be given when source is a callable")
        utts = sorted(source)
    utts = list(utts)
    graph_path = Path(graph)
    words = read_words((graph_path if graph_path.is_dir() else graph_path.parent) / "words.txt")
    kind = "feats" if am is not None else "loglikes"
    per_scale: list[dict[str, UttResult]] = [dict() for _ in scales]
    t0 = time.perf_counter()
    spec = DecoderSpec.make(graph, trans_model, options, am, "best")
    executor = _executor(nj, scheduler)
    if isinstance(executor, LocalExecutor):
        executor.ahead = max(1, int(chunk))
    bar = tqdm(total=len(utts), desc=f"decode nj={executor.nj}", unit="utt", disable=not progress, leave=False)
    for results in executor.map(decode_job, _jobs(utts, source, kind, scales, keep_alignment), spec):
        for i, r in enumerate(results):
            per_scale[i][r.utt] = r
        bar.update(1)
    bar.close()
    wall = time.perf_counter() - t0
    out = []
    for (s, pen), res in zip(scales, per_scale):
        stats, timing = _stats(res)
        audio = stats["audio_seconds"]
        timing.update(wall_seconds=wall, wall_rtf=wall / audio if audio else 0.0, nj=executor.nj)
        out.append(DecodeResult(s, res, words, pen, wall, stats, timing))
        log.info("decoded %d utts at acoustic scale %g, word insertion penalty %g: RTF %.4f (decode s / audio "
                 "s, per process), wall %.1f s for %.1f s audio (all settings)", len(res), s, pen, timing["rtf"],
                 wall, audio)
    return out


def _best(table: Mapping[tuple[float, float], dict]) -> tuple[float, float]:
    """Lowest WER; ties: larger acoustic scale (lighter LM weight), then the penalty closest to 0."""
    return min(table, key=lambda k: (table[k]["wer"], -k[0], abs(k[1])))


def sweep_decode(graph: str | os.PathLike, trans_model, source: LoglikeSource, ref_text: Mapping[str, str],
                 scales: Sequence[float] = (0.05, 0.067, 0.083, 0.1, 0.125), utts: Sequence[str] | None = None,
                 options: DecodeOptions | None = None, am=None, nj: int = 1, progress: bool = True,
                 word_ins_penalties: Sequence[float] = (0.0,), scheduler=None
                 ) -> tuple[tuple[float, float], dict[tuple[float, float], dict], list[DecodeResult]]:
    """Decode dev at every (acoustic scale, word insertion penalty) in one pass over the data.

    Returns ((best scale, best penalty), {(scale, penalty): WER dict}, results); decode test with
    ``DecodeOptions(acoustic_scale=best[0], word_ins_penalty=best[1])``."""
    from asrdistill.decode.score import compute_wer

    utts = list(utts) if utts is not None else sorted(ref_text)
    results = decode(graph, trans_model, source, utts, options, scales, am=am, nj=nj, progress=progress,
                     word_ins_penalties=word_ins_penalties, scheduler=scheduler)
    table: dict[tuple[float, float], dict] = {}
    for r in results:
        key = (r.acoustic_scale, r.word_ins_penalty)
        table[key] = compute_wer({u: ref_text[u] for u in utts}, r.text(), bootstrap=0)
        log.info("acoustic scale %g, word insertion penalty %g: %s", *key, table[key]["line"])
    best = _best(table)
    log.info("best acoustic scale %g (LM weight %.1f), penalty %g: %s", best[0], 1 / best[0], best[1],
             table[best]["line"])
    return best, table, results


# --- the (acoustic scale, word insertion penalty) sweep from one lattice decode ----------------------------
@dataclass
class SweepGrid(JsonConfig):
    """The grid of a dev sweep, as Kaldi's ``local/score.sh``: acoustic scale ``1 / LMWT`` for each LM weight
    in ``lmwts`` and each word insertion penalty in ``penalties`` (graph-cost units, per output word).

    The lattices are decoded once at ``1 / decode_lmwt`` (default: the middle of ``lmwts``) and rescored at
    every point. With ``extend`` the grid grows while the winner sits on one of its edges: by ``lmwt_step``
    (three at a time) within ``[min_lmwt, max_lmwt]``, and by ``penalty_step`` within
    ``[min_penalty, max_penalty]``."""

    lmwts: tuple[float, ...] = tuple(float(x) for x in range(5, 21))
    penalties: tuple[float, ...] = (0.0, 0.5, 1.0)
    decode_lmwt: float | None = None
    extend: bool = True
    lmwt_step: float = 1.0
    penalty_step: float = 0.5
    min_lmwt: float = 1.0
    max_lmwt: float = 40.0
    min_penalty: float = -2.0
    max_penalty: float = 4.0

    def __post_init__(self):
        self.lmwts = tuple(sorted({float(x) for x in self.lmwts}))
        self.penalties = tuple(sorted({float(x) for x in self.penalties}))
        if not self.lmwts or not self.penalties:
            raise UserFacingError("sweep grid: needs at least one LM weight and one penalty")
        if self.lmwts[0] <= 0 or self.min_lmwt <= 0:
            raise UserFacingError(f"sweep grid: LM weights must be positive, got {self.lmwts[0]:g}")
        if self.lmwt_step <= 0 or self.penalty_step <= 0:
            raise UserFacingError("sweep grid: the steps must be positive")

    @property
    def decoding_lmwt(self) -> float:
        if self.decode_lmwt is not None:
            return float(self.decode_lmwt)
        return float(self.lmwts[(len(self.lmwts) - 1) // 2])


def _on_edge(k: tuple[float, float], lmwts: Sequence[float], pens: Sequence[float]) -> bool:
    return (len(lmwts) > 1 and k[0] in (lmwts[0], lmwts[-1])) or (len(pens) > 1 and k[1] in (pens[0], pens[-1]))


def _choose(table: Mapping[tuple[float, float], dict], centre: float, lmwts: Sequence[float],
            pens: Sequence[float]) -> tuple[float, float]:
    """(LMWT, penalty) of the lowest WER. Ties: a point inside the grid before one on its edge (so that a
    flat stretch of WER that reaches inside does not make the grid grow), then the LM weight nearest the
    decoding one (in log), then the penalty nearest 0, then the smaller values."""
    import math
    return min(table, key=lambda k: (table[k]["errors"] / max(table[k]["ref_words"], 1), _on_edge(k, lmwts, pens),
                                     abs(math.log(k[0] / centre)), abs(k[1]), k[0], k[1]))


def _extension(grid: SweepGrid, lmwts: list[float], pens: list[float], best: tuple[float, float]
               ) -> tuple[list[float], list[float]]:
    """New LM weights and penalties beyond the edge the winner sits on (empty: none / at the limits)."""
    new_l: list[float] = []
    new_p: list[float] = []
    lo, hi = lmwts[0], lmwts[-1]
    if len(lmwts) == 1 or best[0] == lo:
        if lo > grid.min_lmwt:
            new_l += [x for x in (lo - k * grid.lmwt_step for k in (1, 2, 3)) if x >= grid.min_lmwt - 1e-9] \
                or [grid.min_lmwt]
    if len(lmwts) == 1 or best[0] == hi:
        if hi < grid.max_lmwt:
            new_l += [x for x in (hi + k * grid.lmwt_step for k in (1, 2, 3)) if x <= grid.max_lmwt + 1e-9] \
                or [grid.max_lmwt]
    if (len(pens) == 1 or best[1] == pens[0]) and pens[0] > grid.min_penalty:
        new_p.append(max(pens[0] - grid.penalty_step, grid.min_penalty))
    if (len(pens) == 1 or best[1] == pens[-1]) and pens[-1] < grid.max_penalty:
        new_p.append(min(pens[-1] + grid.penalty_step, grid.max_penalty))
    return [round(x, 6) for x in new_l], [round(x, 6) for x in new_p]


@dataclass
class SweepResult:
    """A lattice sweep on dev: every grid point's WER (``table``, keyed by (LMWT, penalty)) and the choice."""

    lmwt: float
    word_ins_penalty: float
    decode_acoustic_scale: float
    table: dict[tuple[float, float], dict]
    hyps: dict[str, list[int]]               # utt -> word ids at the chosen point
    utts: dict[str, UttResult]               # the decoder's own best paths (at the decoding scale)
    words: list[str]
    lmwts: list[float]
    penalties: list[float]
    extensions: list[dict]
    stats: dict
    timing: dict

    @property
    def acoustic_scale(self) -> float:
        return 1.0 / self.lmwt

    @property
    def at_edge(self) -> dict[str, bool]:
        """Whether the chosen point is on an edge of the final grid (extension stopped at a limit)."""
        return {"lmwt": self.lmwt in (self.lmwts[0], self.lmwts[-1]),
                "word_ins_penalty": self.word_ins_penalty in (self.penalties[0], self.penalties[-1])}

    def text(self) -> dict[str, str]:
        return {u: " ".join(self.words[w] for w in ws) for u, ws in sorted(self.hyps.items())}

    def grid_rows(self) -> list[dict]:
        keep = ("wer", "errors", "ref_words", "ins", "del", "sub", "sentence_errors")
        return [{"lmwt": k[0], "acoustic_scale": 1.0 / k[0], "word_ins_penalty": k[1],
                 **{f: self.table[k][f] for f in keep}} for k in sorted(self.table)]


def decode_lattices(graph: str | os.PathLike, trans_model, source: LoglikeSource, utts: Sequence[str],
                    acoustic_scale: float, options: DecodeOptions | None = None, am=None, nj: int = 1,
                    progress: bool = True, scheduler=None, grid: tuple[Sequence[float], Sequence[float]] | None = None
                    ) -> tuple[dict[str, UttResult], dict, float, dict[str, list[list[int]]]]:
    """Raw lattices of ``utts`` decoded at ``acoustic_scale`` by ``nj`` :class:`LatticeDecoder` workers.
    Returns ``({utt: UttResult}, {utt: LatticeArrays}, wall seconds, paths)``: with ``grid = (factors,
    penalties)`` ``paths`` is ``{utt: [best path's words at each grid point]}``, rescored by the workers
    (:func:`asrdistill.decode.lattice.best_paths`), else empty."""
    from tqdm import tqdm

    options = options or DecodeOptions()
    kind = "feats" if am is not None else "loglikes"
    spec = DecoderSpec.make(graph, trans_model, options, am, "lattice")
    executor = _executor(nj, scheduler)
    res: dict[str, UttResult] = {}
    lats: dict = {}
    paths: dict[str, list[list[int]]] = {}
    g = None if grid is None else (tuple(float(f) for f in grid[0]), tuple(float(p) for p in grid[1]))
    t0 = time.perf_counter()
    jobs = ((u, kind, _fetch(source, u, kind), float(acoustic_scale), g) for u in utts)
    bar = tqdm(total=len(utts), desc=f"lattices nj={executor.nj}", unit="utt", disable=not progress, leave=False)
    for r, la, words in executor.map(lattice_job, jobs, spec):
        res[r.utt], lats[r.utt] = r, la
        if words is not None:
            paths[r.utt] = words
        bar.update(1)
    bar.close()
    return res, lats, time.perf_counter() - t0, paths


def lattice_sweep(graph: str | os.PathLike, trans_model, source: LoglikeSource, ref_text: Mapping[str, str],
                  utts: Sequence[str] | None = None, grid: SweepGrid | None = None,
                  options: DecodeOptions | None = None, am=None, nj: int = 1, progress: bool = True,
                  scheduler=None) -> SweepResult:
    """Choose (acoustic scale, word insertion penalty) on ``ref_text``'s utterances from one decode: raw
    lattices at ``1 / grid.decoding_lmwt``, each rescored exactly at every grid point
    (:func:`asrdistill.decode.lattice.best_paths`), the grid extended while the winner is on its edge."""
    from asrdistill.decode.lattice import best_paths
    from asrdistill.decode.score import compute_wer

    grid = grid or SweepGrid()
    options = options or DecodeOptions()
    utts = list(utts) if utts is not None else sorted(ref_text)
    missing = [u for u in utts if u not in ref_text]
    if missing:
        raise UserFacingError(f"lattice sweep: no reference for {len(missing)} utterances, e.g. {missing[0]}")
    graph_path = Path(graph)
    words = read_words((graph_path if graph_path.is_dir() else graph_path.parent) / "words.txt")
    centre = grid.decoding_lmwt
    s0 = 1.0 / centre
    lmwts, pens = list(grid.lmwts), list(grid.penalties)
    # the workers rescore each lattice at the first grid's points and at the decoding point itself (factor 1,
    # penalty 0: the equivalence check below); points added by extending the grid are rescored here
    first = [(lw, p) for lw in lmwts for p in pens]
    results, lats, wall, worker_paths = decode_lattices(
        graph, trans_model, source, utts, s0, options, am, nj, progress, scheduler,
        grid=([centre / lw for lw, _ in first] + [1.0], [p for _, p in first] + [0.0]))
    refs = {u: ref_text[u] for u in utts}
    table: dict[tuple[float, float], dict] = {}
    hyps: dict[tuple[float, float], dict[str, list[int]]] = {k: {} for k in first}
    for u in utts:
        for k, path_words in zip(first, worker_paths[u]):
            hyps[k][u] = path_words
    extensions: list[dict] = []
    rescore_secs, points = 0.0, 0   # rescoring of the grid's extensions, in this process
    # the equivalence check: the lattice's best path at the decoding setting is the decoder's best path
    mismatches = [u for u in utts if results[u].ok and worker_paths[u][-1] != results[u].words]
    if mismatches:
        log.warning("%d of %d lattices' best paths differ from the decoder's, e.g. %s", len(mismatches), len(utts),
                    mismatches[0])
    while True:
        todo = [(lw, p) for lw in lmwts for p in pens if (lw, p) not in hyps]
        t0 = time.perf_counter()
        for k in todo:
            hyps[k] = {}
        factors, penalties = [centre / lw for lw, _ in todo], [p for _, p in todo]
        for u in utts:
            for k, path in zip(todo, best_paths(lats[u], factors, penalties) if todo else []):
                hyps[k][u] = path.words
        rescore_secs += time.perf_counter() - t0
        points += len(todo)
        for k in [k for k in hyps if k not in table]:
            table[k] = compute_wer(refs, {u: " ".join(words[w] for w in ws) for u, ws in hyps[k].items()},
                                   bootstrap=0)
        best = _choose(table, centre, lmwts, pens)
        if not grid.extend:
            break
        new_l, new_p = _extension(grid, lmwts, pens, best)
        if not new_l and not new_p:
            break
        extensions.append({"from": {"lmwt": best[0], "word_ins_penalty": best[1]}, "lmwts": new_l,
                           "penalties": new_p})
        log.info("sweep: the best point (LMWT %g, penalty %g) is on the grid's edge: adding LMWT %s, penalties %s",
                 best[0], best[1], new_l, new_p)
        lmwts, pens = sorted(set(lmwts) | set(new_l)), sorted(set(pens) | set(new_p))
    stats, timing = _stats(results)
    audio = stats["audio_seconds"]
    stats.update(lattice_states=sum(la.num_states for la in lats.values()),
                 lattice_arcs=sum(la.num_arcs for la in lats.values()), grid_points=len(table),
                 best_path_mismatches=len(mismatches))
    timing.update(wall_seconds=wall, wall_rtf=wall / audio if audio else 0.0, rescore_seconds=rescore_secs,
                  rescore_seconds_per_point=rescore_secs / max(points, 1),
                  rescore_rtf_per_point=rescore_secs / max(points, 1) / audio if audio else 0.0, nj=nj)
    res = SweepResult(best[0], best[1], s0, table, hyps[best], results, words, lmwts, pens, extensions, stats,
                      timing)
    log.info("sweep over %d points: best LMWT %g (acoustic scale %.4g), penalty %g: %s", len(table), best[0],
             res.acoustic_scale, best[1], table[best]["line"])
    return res


def _write_timing(out: Path, timing: dict) -> None:
    from asrdistill.utils import write_json_atomic
    write_json_atomic(out / "timing.json", timing)


def decode_and_score(graph: str | os.PathLike, trans_model, source: LoglikeSource, out_dir: str | os.PathLike,
                     utts: Sequence[str] | None = None, ref_text: Mapping[str, str] | None = None,
                     acoustic_scales: Sequence[float] | None = None, options: DecodeOptions | None = None,
                     am=None, nj: int = 1, bootstrap: int = 1000, progress: bool = True,
                     word_ins_penalties: Sequence[float] | None = None, scheduler=None,
                     grid: SweepGrid | None = None) -> dict:
    """Decode into a Kaldi-style decode dir and score it; returns the summary (also ``decode.json``; the
    summary's ``timing`` goes to ``timing.json`` only, so that decode.json is the same on every run).

    With ``grid`` (needs ``ref_text``): :func:`lattice_sweep`, the chosen point's words in ``out_dir/text``
    and every grid point's WER in decode.json (``grid_wer``): choose on dev, then decode test at the chosen
    single setting. Otherwise with several settings (``acoustic_scales`` x ``word_ins_penalties``) each is
    decoded (in one pass) into ``out_dir/ascale_<s>[_wip_<p>]/`` and, given ``ref_text``, the best one on it
    is copied up to ``out_dir/text``. Without ``ref_text`` the first setting is kept at the top level.
    """
    from asrdistill.decode.score import compute_wer
    from asrdistill.utils import write_json_atomic, write_text_atomic

    options = options or DecodeOptions()
    if utts is None and ref_text is not None and callable(source):
        utts = sorted(ref_text)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if grid is not None:
        if ref_text is None:
            raise UserFacingError("a sweep needs the reference transcripts (a data dir with a text file)")
        sw = lattice_sweep(graph, trans_model, source, ref_text, utts, grid, options, am, nj, progress, scheduler)
        hyp = sw.text()
        write_text_atomic(out / "text", "".join(f"{u} {t}".rstrip() + "\n" for u, t in hyp.items()))
        summary: dict = {"graph": str(graph), "options": dict(options.__dict__), "method": "lattice",
                         "grid": grid.to_dict(), "decode_acoustic_scale": sw.decode_acoustic_scale,
                         "acoustic_scale": sw.acoustic_scale, "lmwt": sw.lmwt,
                         "word_ins_penalty": sw.word_ins_penalty, "lmwts": sw.lmwts, "penalties": sw.penalties,
                         "extensions": sw.extensions, "at_edge": sw.at_edge, "grid_wer": sw.grid_rows(),
                         "stats": sw.stats}
        summary["wer"] = compute_wer({u: ref_text[u] for u in hyp}, hyp, bootstrap=bootstrap, out_dir=out)
        write_json_atomic(out / "decode.json", summary)
        _write_timing(out, sw.timing)
        log.info("%s: %s (LMWT %g = acoustic scale %.4g, word insertion penalty %g, chosen on these utterances)",
                 out, summary["wer"]["line"], sw.lmwt, sw.acoustic_scale, sw.word_ins_penalty)
        return {**summary, "timing": sw.timing}
    results = decode(graph, trans_model, source, utts, options, acoustic_scales, am=am, nj=nj, progress=progress,
                     word_ins_penalties=word_ins_penalties, scheduler=scheduler)
    summary = {"graph": str(graph), "options": dict(options.__dict__), "method": "decode", "settings": {}}
    timings: dict = {}
    by_key: dict[tuple[float, float], tuple[DecodeResult, dict]] = {}
    several_wip = len({r.word_ins_penalty for r in results}) > 1
    for r in results:
        key = (r.acoustic_scale, r.word_ins_penalty)
        name = f"ascale_{key[0]:g}" + (f"_wip_{key[1]:g}" if several_wip else "")
        entry: dict = {"acoustic_scale": key[0], "word_ins_penalty": key[1], "stats": r.stats}
        timings[name] = r.timing
        if len(results) > 1:
            r.write_text(out / name / "text")
            if ref_text is not None:
                refs = {u: ref_text[u] for u in r.utts}
                entry["wer"] = compute_wer(refs, r.text(), bootstrap=0, out_dir=out / name)
        summary["settings"][name] = entry
        by_key[key] = (r, entry)
    if ref_text is not None and len(results) > 1:
        best = _best({k: v[1]["wer"] for k, v in by_key.items()})
    else:
        best = (results[0].acoustic_scale, results[0].word_ins_penalty)
    r, entry = by_key[best]
    r.write_text(out / "text")
    summary.update(acoustic_scale=best[0], word_ins_penalty=best[1], stats=r.stats)
    if ref_text is not None:
        refs = {u: ref_text[u] for u in r.utts}
        summary["wer"] = compute_wer(refs, r.text(), bootstrap=bootstrap, out_dir=out)
        log.info("%s: %s (acoustic scale %g, word insertion penalty %g)", out, summary["wer"]["line"], *best)
    write_json_atomic(out / "decode.json", summary)
    timing = dict(r.timing, settings=timings) if len(results) > 1 else dict(r.timing)
    _write_timing(out, timing)
    return {**summary, "timing": timing}
