"""``asrdistill make-graph``: the decoding graph HCLG.fst from a lang dir, a G.fst and a GMM-HMM model."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-graph", help="build HCLG.fst (as Kaldi's mkgraph.sh)",
                       description="Compose H (from the model's tree and transition model), C, L_disambig "
                                   "(lang dir) and G into OUT/HCLG.fst, with words.txt and graph.json beside.")
    p.add_argument("--lang", required=True, help="lang dir (L_disambig.fst, words.txt, phones/disambig.int)")
    p.add_argument("--model", required=True, help="GMM-HMM model (final.mdl) holding the tree and transitions")
    p.add_argument("--G", dest="G", required=True, help="G.fst (from train-lm)")
    p.add_argument("--out", required=True, help="graph dir to write")
    p.add_argument("--transition-scale", type=float, default=1.0)
    p.add_argument("--self-loop-scale", type=float, default=0.1)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.commands import command_step
    from asrdistill.decode.graph import make_hclg
    from asrdistill.hmm.model import GmmHmm

    step = command_step(args, "make-graph", args.out, {"lang": args.lang, "model": args.model, "G": args.G},
                        exclude=("out",))
    if step.skip():
        print(f"{args.out}: already complete")
        return 0
    step.begin()
    model = GmmHmm.load(args.model)
    info = make_hclg(args.lang, model.ctx_dep, model.trans_model, args.G, args.out,
                     transition_scale=args.transition_scale, self_loop_scale=args.self_loop_scale)
    step.complete(["HCLG.fst", "words.txt"])
    print(f"{info.hclg_path}: {info.states} states, {info.arcs} arcs, {info.bytes / 1e6:.1f} MB "
          f"({info.seconds:.1f} s)")
    return 0
