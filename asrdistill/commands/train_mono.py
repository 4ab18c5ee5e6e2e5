"""``asrdistill train-mono DATA_DIR FEAT_DIR LANG_DIR EXP_DIR``: monophone GMM-HMM (flat start, Viterbi EM)."""
from __future__ import annotations

import argparse


def add_train_options(p: argparse.ArgumentParser, num_iters: int, tot_gauss: int, realign: str,
                      max_iter_inc: int) -> None:
    p.add_argument("--num-iters", type=int, default=num_iters, help=f"EM iterations (default: {num_iters})")
    p.add_argument("--num-gauss", "--tot-gauss", dest="tot_gauss", type=int, default=tot_gauss,
                   help=f"target total number of Gaussians (default: {tot_gauss})")
    p.add_argument("--max-iter-inc", type=int, default=max_iter_inc,
                   help=f"last iteration that adds Gaussians (default: {max_iter_inc})")
    p.add_argument("--realign-iters", default=realign, help=f"iterations that realign (default: '{realign}')")
    p.add_argument("--boost-silence", type=float, default=1.0, help="factor on silence likelihoods when "
                                                                     "aligning (default: 1.0)")
    p.add_argument("--beam", type=float, default=10.0, help="alignment beam (default: 10)")
    p.add_argument("--retry-beam", type=float, default=40.0, help="beam of the retry when an utterance fails "
                                                                   "(default: 40)")
    p.add_argument("--nj", type=int, default=2, help="parallel processes (default: 2)")
    from asrdistill.commands.cluster_options import add_scheduler_option
    add_scheduler_option(p, "the chunks of each EM pass")


def train_config_from_args(args: argparse.Namespace, base):
    from dataclasses import replace
    return replace(base, num_iters=args.num_iters, tot_gauss=args.tot_gauss, max_iter_inc=args.max_iter_inc,
                   realign_iters=tuple(int(x) for x in args.realign_iters.split()),
                   boost_silence=args.boost_silence, beam=args.beam, retry_beam=args.retry_beam, nj=args.nj,
                   scheduler=args.scheduler)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-mono", help="train a monophone GMM-HMM (like Kaldi's steps/train_mono.sh)",
        description="Train a monophone GMM-HMM on 39-dim cepstra + deltas derived from FEAT_DIR's frame store: "
                    "flat start from equal alignments, Viterbi EM with realignment and mixing up. Writes "
                    "EXP_DIR/final.mdl and EXP_DIR/report.json. Align data with `asrdistill align` afterwards.")
    p.add_argument("data_dir", metavar="DATA_DIR", help="Kaldi data dir (its text file gives the transcripts)")
    p.add_argument("feat_dir", metavar="FEAT_DIR", help="feature dir with frames.f32/frames.json")
    p.add_argument("lang_dir", metavar="LANG_DIR")
    p.add_argument("exp_dir", metavar="EXP_DIR")
    from asrdistill.align.train import MONO_REALIGN_ITERS
    add_train_options(p, 40, 1000, " ".join(map(str, MONO_REALIGN_ITERS)), 30)
    p.add_argument("--subset", type=int, default=0, metavar="N",
                   help="train on the N shortest utterances only, like Kaldi's train_2kshort (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.align.train import GmmTrainConfig, save_system, shortest_utterances, train_mono
    from asrdistill.commands import command_step
    from asrdistill.align.train import transcripts_from_data_dir
    from asrdistill.lang import load_lang

    step = command_step(args, "train-mono", args.exp_dir, {"data_dir": args.data_dir, "feat_dir": args.feat_dir,
                                                           "lang_dir": args.lang_dir}, exclude=("exp_dir",))
    if step.skip():
        print(f"{args.exp_dir}: already trained")
        return 0
    step.begin()
    lang = load_lang(args.lang_dir)
    transcripts = shortest_utterances(transcripts_from_data_dir(lang, args.data_dir), args.feat_dir, args.subset)
    model, _, report = train_mono(lang, args.feat_dir, transcripts, train_config_from_args(args, GmmTrainConfig()))
    files = save_system(model, report, args.exp_dir)
    step.complete(files, info={"num_pdfs": model.num_pdfs, "num_gauss": int(model.am.num_gauss)})
    print(f"{args.exp_dir}/final.mdl: {model.num_pdfs} pdfs, {model.am.num_gauss} Gaussians")
    return 0
