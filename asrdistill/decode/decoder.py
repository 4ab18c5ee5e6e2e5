"""Viterbi beam search over HCLG with Kaldi's LatticeFasterDecoder (best path), spread over processes.

Acoustic scores come from either
  * a GMM: ``DecodableAmDiagGmmScaled(am, trans_model, feats, acoustic_scale)``, or
  * a matrix of per-frame pdf log-likelihoods ``[T, num_pdfs]`` (a DNN's log-softmax minus log-prior, an
    ensemble's or a distilled model's), scaled by the acoustic scale and expanded to transition-id
    columns for ``DecodableCtc`` (which reads label ``i`` from column ``i - 1``): column ``j`` holds the
    pdf of transition-id ``j + 1`` (``trans_model.transition_id_to_pdf_array()[1:]``).

The network's forward pass is not done here: callers pass a mapping utt -> matrix, or a callable
``utt -> matrix`` evaluated in this process (e.g. batched on a GPU) while worker processes decode.

Since HCLG has the LM built in, the acoustic scale is the inverse LM weight. Several acoustic scales can
be decoded in one pass over the data (each worker decodes every matrix once per scale), which is how
:func:`sweep_decode` picks the scale on dev without repeating the forward pass.
Real-time factor = decode seconds / audio seconds, frames being 10 ms.
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from asrdistill.errors import UserFacingError
from asrdistill.utils import get_logger, write_text_atomic

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
    word_ins_penalty: float = 0.0   # graph cost added per output word (Kaldi's wip times the acoustic scale)
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
    stats: dict = field(default_factory=dict)

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


class GraphDecoder:
    """One process's decoder: the graph and models are loaded once, then utterances are decoded."""

    def __init__(self, graph: str | os.PathLike, trans_model, options: DecodeOptions, am=None):
        import kaldi_hmm_gmm as khg
        import kaldifst
        path = Path(graph)
        if path.is_dir():
            path = path / "HCLG.fst"
        if not path.is_file():
            raise UserFacingError(f"{path}: decoding graph not found (run `asrdistill make-graph`)")
        self.vector = kaldifst.StdVectorFst.read(str(path))
        if self.vector is None or self.vector.num_states == 0 or self.vector.start < 0:
            raise UserFacingError(f"{path}: empty or unreadable graph")
        self._graphs: dict[float, tuple] = {}  # word insertion penalty -> (ConstFst, decoder)
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
        """The decoder over HCLG with ``word_ins_penalty`` per word (one graph copy per penalty)."""
        import kaldi_hmm_gmm as khg
        import kaldifst

        from asrdistill.decode.graph import add_word_insertion_penalty
        pen = self.options.word_ins_penalty if word_ins_penalty is None else float(word_ins_penalty)
        if pen not in self._graphs:
            fst = self.vector if pen == 0.0 else add_word_insertion_penalty(self.vector, pen)
            const = kaldifst.StdConstFst(fst)  # faster to search (as Kaldi's fstconvert --fst_type=const)
            self._graphs[pen] = (const, khg.LatticeFasterDecoderStdConstFst(const, self.config))
        return self._graphs[pen][1]

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


# --- worker processes --------------------------------------------------------------------------
_WORKER: GraphDecoder | None = None


def _worker_init(graph: str, tm_state, am_state, options: DecodeOptions) -> None:
    import kaldi_hmm_gmm as khg
    global _WORKER
    tm = khg.TransitionModel.__new__(khg.TransitionModel)
    tm.__setstate__(tm_state)
    am = None
    if am_state is not None:
        am = khg.AmDiagGmm.__new__(khg.AmDiagGmm)
        am.__setstate__(am_state)
    _WORKER = GraphDecoder(graph, tm, options, am)


Setting = tuple[float, float]  # (acoustic scale, word insertion penalty)


def _decode_settings(dec: GraphDecoder, job) -> list[UttResult]:
    utt, kind, data, settings, keep = job
    fn = dec.decode_loglikes if kind == "loglikes" else dec.decode_feats
    return [fn(utt, data, s, keep, p) for s, p in settings]


def _worker_decode(job: tuple[str, str, np.ndarray, Sequence[Setting], bool]) -> list[UttResult]:
    assert _WORKER is not None
    return _decode_settings(_WORKER, job)


def _jobs(utts: Sequence[str], source, kind: str, scales: Sequence[Setting], keep: bool
          ) -> Iterator[tuple[str, str, np.ndarray, Sequence[Setting], bool]]:
    for utt in utts:
        try:
            data = source(utt) if callable(source) else source[utt]
        except KeyError:
            raise UserFacingError(f"utterance {utt}: no {'log-likelihoods' if kind == 'loglikes' else 'features'}")
        yield utt, kind, np.asarray(data, dtype=np.float32), scales, keep


def decode(graph: str | os.PathLike, trans_model, source: LoglikeSource, utts: Sequence[str] | None = None,
           options: DecodeOptions | None = None, acoustic_scales: Sequence[float] | None = None,
           am=None, nj: int = 1, keep_alignment: bool = False, progress: bool = True,
           chunk: int = 16, word_ins_penalties: Sequence[float] | None = None) -> list[DecodeResult]:
    """Decode utterances with HCLG in ``graph`` (dir or HCLG.fst path); one result per acoustic scale
    and word insertion penalty (``word_ins_penalties`` defaults to ``[options.word_ins_penalty]``; each
    penalty costs one graph copy in memory per process).

    ``source``: utt -> [T, num_pdfs] pdf log-likelihoods (mapping or callable; ``am=None``), or
    utt -> [T, D] features with ``am`` an AmDiagGmm (GMM decoding). ``acoustic_scales`` defaults to
    ``[options.acoustic_scale]``. ``nj`` worker processes each load the graph once; with ``nj=1`` decoding
    runs in this process; a callable ``source`` is always called in this process (e.g. a batched GPU
    forward pass), at most ``nj * chunk`` utterances ahead of the decoders.
    """
    from tqdm import tqdm

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
    jobs = _jobs(utts, source, kind, scales, keep_alignment)
    bar = tqdm(total=len(utts), desc=f"decode nj={nj}", unit="utt", disable=not progress, leave=False)
    if nj <= 1:
        dec = GraphDecoder(graph, trans_model, options, am)
        for job in jobs:
            for i, r in enumerate(_decode_settings(dec, job)):
                per_scale[i][r.utt] = r
            bar.update(1)
    else:
        ctx = mp.get_context("spawn")  # fresh interpreters: no forked OpenFst/torch state
        init = (str(graph), trans_model.__getstate__(), am.__getstate__() if am is not None else None, options)
        with ctx.Pool(nj, initializer=_worker_init, initargs=init) as pool:
            while True:  # windows of nj * chunk utterances bound the matrices held in memory
                window = list(itertools.islice(jobs, nj * chunk))
                if not window:
                    break
                for results in pool.imap(_worker_decode, window, chunksize=1):
                    for i, r in enumerate(results):
                        per_scale[i][r.utt] = r
                    bar.update(1)
    bar.close()
    wall = time.perf_counter() - t0
    out = []
    for (s, pen), res in zip(scales, per_scale):
        frames = sum(r.num_frames for r in res.values())
        audio = frames * FRAME_SHIFT
        dsecs = sum(r.seconds for r in res.values())
        stats = {"utterances": len(res), "frames": frames, "audio_seconds": audio, "decode_seconds": dsecs,
                 "rtf": dsecs / audio if audio else 0.0, "wall_seconds": wall,
                 "wall_rtf": wall / audio if audio else 0.0, "nj": nj,
                 "failed": sum(not r.ok for r in res.values()),
                 "empty": sum(not r.words for r in res.values())}
        out.append(DecodeResult(s, res, words, pen, wall, stats))
        log.info("decoded %d utts at acoustic scale %g, word insertion penalty %g: RTF %.4f (decode s / audio "
                 "s, per process), wall %.1f s for %.1f s audio (all settings)", len(res), s, pen, stats["rtf"],
                 wall, audio)
    return out


def _best(table: Mapping[tuple[float, float], dict]) -> tuple[float, float]:
    """Lowest WER; ties: larger acoustic scale (lighter LM weight), then the penalty closest to 0."""
    return min(table, key=lambda k: (table[k]["wer"], -k[0], abs(k[1])))


def sweep_decode(graph: str | os.PathLike, trans_model, source: LoglikeSource, ref_text: Mapping[str, str],
                 scales: Sequence[float] = (0.05, 0.067, 0.083, 0.1, 0.125), utts: Sequence[str] | None = None,
                 options: DecodeOptions | None = None, am=None, nj: int = 1, progress: bool = True,
                 word_ins_penalties: Sequence[float] = (0.0,)
                 ) -> tuple[tuple[float, float], dict[tuple[float, float], dict], list[DecodeResult]]:
    """Decode dev at every (acoustic scale, word insertion penalty) in one pass over the data.

    Returns ((best scale, best penalty), {(scale, penalty): WER dict}, results); decode test with
    ``DecodeOptions(acoustic_scale=best[0], word_ins_penalty=best[1])``."""
    from asrdistill.decode.score import compute_wer

    utts = list(utts) if utts is not None else sorted(ref_text)
    results = decode(graph, trans_model, source, utts, options, scales, am=am, nj=nj, progress=progress,
                     word_ins_penalties=word_ins_penalties)
    table: dict[tuple[float, float], dict] = {}
    for r in results:
        key = (r.acoustic_scale, r.word_ins_penalty)
        table[key] = compute_wer({u: ref_text[u] for u in utts}, r.text(), bootstrap=0)
        log.info("acoustic scale %g, word insertion penalty %g: %s", *key, table[key]["line"])
    best = _best(table)
    log.info("best acoustic scale %g (LM weight %.1f), penalty %g: %s", best[0], 1 / best[0], best[1],
             table[best]["line"])
    return best, table, results


def decode_and_score(graph: str | os.PathLike, trans_model, source: LoglikeSource, out_dir: str | os.PathLike,
                     utts: Sequence[str] | None = None, ref_text: Mapping[str, str] | None = None,
                     acoustic_scales: Sequence[float] | None = None, options: DecodeOptions | None = None,
                     am=None, nj: int = 1, bootstrap: int = 1000, progress: bool = True,
                     word_ins_penalties: Sequence[float] | None = None) -> dict:
    """Decode into a Kaldi-style decode dir and score it; returns the summary (also ``decode.json``).

    With several settings (``acoustic_scales`` x ``word_ins_penalties``) each is decoded (in one pass) into
    ``out_dir/ascale_<s>[_wip_<p>]/`` and, given ``ref_text``, the best one on it is copied up to
    ``out_dir/text`` (pick it on dev, then decode test at that single setting). Without ``ref_text`` the
    first setting is kept at the top level.
    """
    from asrdistill.decode.score import compute_wer
    from asrdistill.utils import write_json_atomic

    options = options or DecodeOptions()
    if utts is None and ref_text is not None and callable(source):
        utts = sorted(ref_text)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = decode(graph, trans_model, source, utts, options, acoustic_scales, am=am, nj=nj, progress=progress,
                     word_ins_penalties=word_ins_penalties)
    summary: dict = {"graph": str(graph), "options": dict(options.__dict__), "settings": {}}
    by_key: dict[tuple[float, float], tuple[DecodeResult, dict]] = {}
    several_wip = len({r.word_ins_penalty for r in results}) > 1
    for r in results:
        key = (r.acoustic_scale, r.word_ins_penalty)
        name = f"ascale_{key[0]:g}" + (f"_wip_{key[1]:g}" if several_wip else "")
        entry: dict = {"acoustic_scale": key[0], "word_ins_penalty": key[1], "stats": r.stats}
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
    return summary
