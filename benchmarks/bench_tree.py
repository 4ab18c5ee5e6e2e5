"""Benchmark of triphone tree statistics and tree building on synthetic data.

40 speech phones (3 pdf-classes) + 2 silence phones (5 pdf-classes), 39-dim features whose means depend
on the centre phone, the pdf-class and classes of the left and right phones. Reports seconds for
accumulating the statistics, for questions, and for building trees of a given number of leaves.

  python benchmarks/bench_tree.py --frames 3000000 --leaves 2000 14000
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asrdistill.tree import TreeStats, build_tree, make_questions, make_roots  # noqa: E402
from asrdistill.tree.kaldi_io import to_context_dependency  # noqa: E402


def synthetic_corpus(num_frames: int, num_speech: int = 40, dim: int = 39, seed: int = 0,
                     utt_frames: int = 1000):
    """Yield (feats, segments) utterances; returns also num_pdf_classes."""
    rng = np.random.default_rng(seed)
    sil = [num_speech + 1, num_speech + 2]
    phones = np.arange(1, num_speech + 3)
    npc = {int(p): (5 if p in sil else 3) for p in phones}
    base = rng.normal(0, 2, (num_speech + 3, 5, dim))
    ctx_class = rng.integers(0, 6, num_speech + 3)  # phones' context classes
    ctx_class[0] = 6
    left_eff = rng.normal(0, 0.7, (7, 5, dim))
    right_eff = rng.normal(0, 0.7, (7, 5, dim))

    def gen():
        done = 0
        while done < num_frames:
            n_ph = utt_frames // 8
            ph = rng.choice(phones[:num_speech], n_ph)
            ph[0], ph[-1] = sil[0], sil[0]
            left = np.r_[0, ph[:-1]]
            right = np.r_[ph[1:], 0]
            segs, feats = [], []
            for p, l, r in zip(ph, left, right):
                k = npc[int(p)]
                durs = rng.integers(1, 4, k)
                pc = np.repeat(np.arange(k), durs)
                mu = base[p, pc] + left_eff[ctx_class[l], pc] + right_eff[ctx_class[r], pc]
                feats.append(mu + rng.standard_normal(mu.shape))
                segs.append((int(p), pc))
            x = np.concatenate(feats).astype(np.float32)
            done += len(x)
            yield x, segs
    return gen(), npc, phones, sil


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2_000_000)
    ap.add_argument("--leaves", type=int, nargs="+", default=[2000, 14000])
    ap.add_argument("--thresh", type=float, default=0.0)
    ap.add_argument("--cluster-thresh", type=float, default=-1.0, help="-1: smallest split (Kaldi default)")
    ap.add_argument("--stats", help="cache the statistics in this .npz")
    args = ap.parse_args()

    utts, npc, phones, sil = synthetic_corpus(args.frames)
    if args.stats and Path(args.stats).exists():
        stats = TreeStats.load(args.stats)
        gen_s = acc_s = 0.0
    else:
        stats = TreeStats(39)
        gen_s = acc_s = 0.0
        t = time.time()
        for x, segs in utts:
            t1 = time.time()
            gen_s += t1 - t
            stats.accumulate(x, segs)
            t = time.time()
            acc_s += t - t1
        stats.keys  # flush
        acc_s += time.time() - t
        if args.stats:
            stats.save(args.stats)
    mf = stats.num_frames / 1e6
    print(f"frames {stats.num_frames:.0f}, contexts {stats.num_contexts}; accumulate {acc_s:.2f}s "
          f"({acc_s / mf:.2f} s per million frames; synthetic generation {gen_s:.1f}s)")
    roots = make_roots([int(p) for p in phones], shared_sets=[sil])
    t = time.time()
    questions = make_questions(stats, [r.phones for r in roots], num_pdf_classes=npc)
    print(f"questions: {questions} in {time.time() - t:.2f}s")
    for n in args.leaves:
        t = time.time()
        tree, info = build_tree(stats, questions, roots, npc, num_leaves=n, thresh=args.thresh,
                                min_count=20, cluster_thresh=args.cluster_thresh, return_info=True)
        s = time.time() - t
        print(f"num_leaves {n}: {info['num_leaves']} leaves, {info['num_pdfs']} pdfs, build {s:.1f}s "
              f"(split {info['seconds_split']:.1f}s) = {s / mf:.2f} s per million frames; "
              f"objf/frame {info['objf_per_frame']:.3f}")
        t = time.time()
        cd = to_context_dependency(tree)
        print(f"  serialise+load into kaldi_hmm_gmm {time.time() - t:.2f}s, num_pdfs {cd.num_pdfs}")


if __name__ == "__main__":
    main()
