"""``asrdistill train-tri DATA_DIR FEAT_DIR LANG_DIR ALI_DIR EXP_DIR``: triphone GMM-HMM from an alignment."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from asrdistill.commands.train_mono import add_train_options
    p = subparsers.add_parser(
        "train-tri", help="train a triphone GMM-HMM on a decision tree (like Kaldi's steps/train_deltas.sh)",
        description="Build a decision tree from ALI_DIR's alignments (made by `asrdistill align` with a "
                    "monophone or triphone model), initialise one Gaussian per tied state, convert the "
                    "alignment to the tree, then Viterbi EM with realignment and mixing up. Writes "
                    "EXP_DIR/final.mdl, EXP_DIR/tree (Kaldi binary) and EXP_DIR/report.json.")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("feat_dir", metavar="FEAT_DIR")
    p.add_argument("lang_dir", metavar="LANG_DIR")
    p.add_argument("ali_dir", metavar="ALI_DIR", help="alignment dir of DATA_DIR (ali.scp + final.mdl)")
    p.add_argument("exp_dir", metavar="EXP_DIR")
    p.add_argument("--num-leaves", type=int, default=2000, help="maximum tree leaves (default: 2000)")
    p.add_argument("--tree-min-count", type=float, default=100.0,
                   help="minimum frames on each side of a tree split (default: 100)")
    add_train_options(p, 35, 10000, "10 20 30", 25)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from asrdistill.align.train import read_source_alignments, save_system, train_tri, tri_config
    from asrdistill.commands import command_step
    from asrdistill.commands.train_mono import train_config_from_args
    from asrdistill.align.train import transcripts_from_data_dir
    from asrdistill.lang import load_lang

    step = command_step(args, "train-tri", args.exp_dir, {"data_dir": args.data_dir, "feat_dir": args.feat_dir,
                                                          "lang_dir": args.lang_dir, "ali_dir": args.ali_dir},
                        exclude=("exp_dir",))
    if step.skip():
        print(f"{args.exp_dir}: already trained")
        return 0
    step.begin()
    lang = load_lang(args.lang_dir)
    transcripts = transcripts_from_data_dir(lang, args.data_dir)
    source, alignments = read_source_alignments(args.ali_dir, transcripts)
    cfg = replace(train_config_from_args(args, tri_config()), num_leaves=args.num_leaves,
                  tree_min_count=args.tree_min_count)
    model, _, report = train_tri(lang, args.feat_dir, transcripts, source, alignments, cfg)
    files = save_system(model, report, args.exp_dir)
    step.complete(files, info={"num_pdfs": model.num_pdfs, "num_gauss": int(model.am.num_gauss)})
    print(f"{args.exp_dir}/final.mdl: {model.num_pdfs} pdfs, {model.am.num_gauss} Gaussians")
    return 0
