"""Benchmark: choosing (acoustic scale, word insertion penalty) on dev by decoding once per setting
(LatticeFasterDecoder best path, the old route) or by one lattice decode rescored over the grid (the new route).

On a recipe's experiment (graph, triphone model, a DNN or the GMM, dev frame store and data dir) it measures, in
this process (one core):

* RTF of LatticeFasterDecoder best path at one setting (beam, max-active as given);
* RTF of kaldi_decoder's LatticeSimpleDecoder at the same beam (raw lattice), of reading the lattice into
  arrays, and of rescoring it at every point of the grid;
* the equivalence checks: the lattice's best path at the decoding scale vs LatticeSimpleDecoder's own best path
  and vs LatticeFasterDecoder's at that scale, and the rescored words at other grid points vs
  LatticeFasterDecoder decoding at those points (utterances that differ, and the WER of each route).

  python benchmarks/bench_decode_sweep.py --exp /tmp/h2/exp --data /tmp/h2/data --system dnn \\
      --beam 10 --max-active 2000 --lattice-beam 6 --check-lmwts 6,10,14,18 --out timing.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exp", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--system", choices=["dnn", "gmm"], default="dnn")
    ap.add_argument("--beam", type=float, default=10.0)
    ap.add_argument("--max-active", type=int, default=2000)
    ap.add_argument("--lattice-beam", type=float, default=6.0)
    ap.add_argument("--decode-lmwt", type=float, default=12.0)
    ap.add_argument("--lmwts", default="5-20")
    ap.add_argument("--penalties", default="0,0.5,1.0")
    ap.add_argument("--check-lmwts", default="6,10,14,18", help="grid LM weights also decoded directly")
    ap.add_argument("--check-penalties", default="0,1.0")
    ap.add_argument("--utts", type=int, default=0, help="first N utterances (0: all)")
    ap.add_argument("--out", help="write the measurements as JSON here")
    args = ap.parse_args()

    import kaldi_decoder  # noqa: F401  (import order: kaldifst users first)

    from asrdistill.decode.decoder import DecodeOptions, GraphDecoder, LatticeDecoder, read_words
    from asrdistill.decode.lattice import best_paths, lattice_arrays
    from asrdistill.decode.score import compute_wer, read_text
    from asrdistill.decode.sources import GmmLoglikes, dnn_source, gmm_source
    from asrdistill.hmm.model import GmmHmm

    exp, data = Path(args.exp), Path(args.data)
    graph = exp / "tri" / "graph"
    model = GmmHmm.load(exp / "tri" / "final.mdl")
    refs = read_text(data / args.split / "text")
    feats = data / "fbank" / args.split
    if args.system == "dnn":
        utts, source, _ = dnn_source([str(exp / "dnn" / "ensemble" / "member0" / "final.mdl")], feats, refs,
                                     device="cpu")
        t0 = time.perf_counter()
        mats = {u: source(u) for u in utts}
        score_secs = time.perf_counter() - t0
    else:
        utts, fsource, am = gmm_source(model, feats, refs)
        gl = GmmLoglikes(am)
        t0 = time.perf_counter()
        mats = {u: gl(fsource(u)) for u in utts}
        score_secs = time.perf_counter() - t0
    if args.utts:
        utts = utts[:args.utts]
    refs = {u: refs[u] for u in utts}
    words = read_words(graph / "words.txt")
    frames = sum(len(mats[u]) for u in utts)
    audio = frames * 0.01
    opts = DecodeOptions(beam=args.beam, max_active=args.max_active, lattice_beam=args.lattice_beam)
    s0 = 1.0 / args.decode_lmwt

    def text(hyp):
        return {u: " ".join(words[w] for w in ws) for u, ws in hyp.items()}

    # the old route: LatticeFasterDecoder best path, one decode per setting
    fast = GraphDecoder(graph, model.trans_model, opts)
    fast_at: dict = {}

    def decode_fast(scale, pen):
        t = 0.0
        out = {}
        for u in utts:
            r = fast.decode_loglikes(u, mats[u], scale, word_ins_penalty=pen)
            t += r.seconds
            out[u] = r.words
        fast_at[(round(1 / scale, 6), pen)] = out
        return t

    fast.decoder(0.0)
    fast_secs = decode_fast(s0, 0.0)

    # the new route: one LatticeSimpleDecoder pass, raw lattices, rescoring
    lat_dec = LatticeDecoder(graph, model.trans_model, opts)
    lats, own = {}, {}
    lat_secs = read_secs = 0.0
    for u in utts:
        t = time.perf_counter()
        r, la = lat_dec.lattice(u, mats[u], s0)
        read_secs += time.perf_counter() - t - r.seconds   # lattice_arrays: the call less the decoding
        lat_secs += r.seconds
        own[u], lats[u] = r.words, la

    lmwts = _range(args.lmwts)
    pens = [float(x) for x in args.penalties.split(",")]
    grid = [(lw, p) for lw in lmwts for p in pens]
    t = time.perf_counter()
    resc = {k: {} for k in grid}
    for u in utts:
        for k, path in zip(grid, best_paths(lats[u], [args.decode_lmwt / lw for lw, _ in grid], [p for _, p in grid])):
            resc[k][u] = path.words
    rescore_secs = time.perf_counter() - t
    at_s0 = {u: best_paths(lats[u], [1.0], [0.0])[0].words for u in utts}

    # equivalence at other settings: decode directly with LatticeFasterDecoder
    checks = []
    for lw in _range(args.check_lmwts):
        for p in [float(x) for x in args.check_penalties.split(",")]:
            if (lw, p) not in resc:
                continue
            secs = decode_fast(1.0 / lw, p)
            d = fast_at[(lw, p)]
            checks.append({"lmwt": lw, "word_ins_penalty": p, "utts_differ": sum(d[u] != resc[(lw, p)][u] for u in utts),
                           "wer_rescored": compute_wer(refs, text(resc[(lw, p)]), bootstrap=0)["wer"],
                           "wer_decoded": compute_wer(refs, text(d), bootstrap=0)["wer"], "decode_rtf": secs / audio})
    wers = {k: compute_wer(refs, text(v), bootstrap=0)["wer"] for k, v in resc.items()}
    best = min(wers, key=lambda k: wers[k])
    res = {
        "system": args.system, "utterances": len(utts), "audio_seconds": audio, "grid_points": len(grid),
        "graph_states": json.loads((graph / "graph.json").read_text())["states"],
        "beam": args.beam, "max_active": args.max_active, "lattice_beam": args.lattice_beam,
        "decode_lmwt": args.decode_lmwt, "acoustic_scoring_rtf": score_secs / audio,
        "faster_best_path_rtf": fast_secs / audio,
        "lattice_simple_rtf": lat_secs / audio, "lattice_read_rtf": read_secs / audio,
        "rescore_rtf_all_points": rescore_secs / audio, "rescore_rtf_per_point": rescore_secs / audio / len(grid),
        "rescore_seconds_per_point": rescore_secs / len(grid),
        "old_route_rtf_whole_grid": fast_secs / audio * len(grid),
        "new_route_rtf_whole_grid": (lat_secs + read_secs + rescore_secs) / audio,
        "lattice_arcs_per_frame": sum(la.num_arcs for la in lats.values()) / frames,
        "lattice_best_equals_simple_best": sum(at_s0[u] == own[u] for u in utts),
        "simple_best_equals_faster_best": sum(own[u] == fast_at[(args.decode_lmwt, 0.0)][u] for u in utts),
        "wer_faster_at_decode_scale": compute_wer(refs, text(fast_at[(args.decode_lmwt, 0.0)]), bootstrap=0)["wer"],
        "wer_lattice_at_decode_scale": wers.get((args.decode_lmwt, 0.0)),
        "best_point": {"lmwt": best[0], "word_ins_penalty": best[1], "wer": wers[best]},
        "checks": checks,
        "grid_wer": [{"lmwt": k[0], "word_ins_penalty": k[1], "wer": v} for k, v in sorted(wers.items())],
    }
    print(json.dumps({k: v for k, v in res.items() if k != "grid_wer"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1) + "\n")


def _range(value: str) -> list[float]:
    if "-" in value and "," not in value:
        a, b = (float(x) for x in value.split("-"))
        return [a + i for i in range(int(b - a) + 1)]
    return [float(x) for x in value.split(",")]


if __name__ == "__main__":
    main()
