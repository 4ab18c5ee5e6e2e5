"""``asrdistill align`` (GMM-HMM forced alignment into an alignment dir) and ``asrdistill import-ali``
(bring your own per-frame pdf-id alignments)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "align", help="force-align a data set with a GMM-HMM into an alignment dir",
        description="Align every utterance of DATA_DIR (transcripts) / FEAT_DIR (frames) with MODEL_DIR/final.mdl "
                    "and write OUT_DIR: ali.scp/ark (transition-ids), pdf.scp/ark (pdf-ids), pdf_counts.txt, "
                    "num_pdfs, failed.txt, final.mdl. Utterances that fail even with --retry-beam are logged "
                    "and left out.")
    p.add_argument("data_dir", metavar="DATA_DIR")
    p.add_argument("feat_dir", metavar="FEAT_DIR")
    p.add_argument("lang_dir", metavar="LANG_DIR")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="dir with final.mdl (train-mono / train-tri output)")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--beam", type=float, default=10.0, help="alignment beam (default: 10)")
    p.add_argument("--retry-beam", type=float, default=40.0, help="retry beam (default: 40)")
    p.add_argument("--boost-silence", type=float, default=1.0, help="silence likelihood factor (default: 1.0)")
    p.add_argument("--nj", type=int, default=2, help="parallel processes (default: 2)")
    from asrdistill.commands.cluster_options import add_scheduler_option
    add_scheduler_option(p, "the alignment chunks")
    p.set_defaults(func=run_align)

    q = subparsers.add_parser(
        "import-ali", help="import your own per-frame pdf-id alignments (ali-to-pdf output) as an alignment dir",
        description="Check Kaldi pdf-id alignments (an .ark or .scp of int vectors, e.g. from "
                    "`ali-to-pdf final.mdl ark:ali.1 ark,scp:pdf.ark,pdf.scp`) against FEAT_DIR's frame store "
                    "(every utterance known, one pdf-id per frame, ids below --num-pdfs) and write OUT_DIR "
                    "(pdf.scp/ark, pdf_counts.txt, num_pdfs, failed.txt).")
    q.add_argument("ali", metavar="ALI_ARK_OR_SCP")
    q.add_argument("feat_dir", metavar="FEAT_DIR")
    q.add_argument("out_dir", metavar="OUT_DIR")
    q.add_argument("--num-pdfs", type=int, required=True, help="number of pdfs of the model that aligned")
    q.add_argument("--require-all", action="store_true",
                   help="fail if an utterance of FEAT_DIR has no alignment (default: list it in failed.txt)")
    q.add_argument("--allow-pipes", action="store_true",
                   help="run scp entries that are commands ('cmd |'); off by default (they run arbitrary commands)")
    q.set_defaults(func=run_import)


def run_align(args: argparse.Namespace) -> int:
    from pathlib import Path

    from asrdistill.align.train import align_data
    from asrdistill.commands import command_step
    from asrdistill.hmm.model import GmmHmm
    from asrdistill.align.train import transcripts_from_data_dir
    from asrdistill.lang import load_lang

    model_file = Path(args.model_dir) / "final.mdl"
    step = command_step(args, "align", args.out_dir, {"data_dir": args.data_dir, "feat_dir": args.feat_dir,
                                                      "lang_dir": args.lang_dir, "model": str(model_file)},
                        exclude=("out_dir", "model_dir"))
    if step.skip():
        print(f"{args.out_dir}: already aligned")
        return 0
    step.begin()
    lang = load_lang(args.lang_dir)
    transcripts = transcripts_from_data_dir(lang, args.data_dir)
    model = GmmHmm.load(model_file)
    alis, failed = align_data(model, lang, args.feat_dir, transcripts, args.out_dir, beam=args.beam,
                              retry_beam=args.retry_beam, boost_silence=args.boost_silence, nj=args.nj,
                              data_dir=args.data_dir, scheduler=args.scheduler)
    step.complete(["ali.ark", "pdf.ark", "num_pdfs", "failed.txt", "final.mdl"],
                  info={"aligned": len(alis), "failed": len(failed)})
    print(f"{args.out_dir}: {len(alis)} utterances aligned, {len(failed)} failed")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from asrdistill.align.alidir import import_pdf_alignments

    from asrdistill.commands import command_step

    step = command_step(args, "import-ali", args.out_dir, {"ali": args.ali, "feat_dir": args.feat_dir},
                        exclude=("out_dir",))
    if step.skip():
        print(f"{args.out_dir}: already imported")
        return 0
    step.begin()
    out = import_pdf_alignments(args.ali, args.num_pdfs, args.feat_dir, args.out_dir,
                                allow_missing=not args.require_all, allow_pipes=args.allow_pipes)
    step.complete(["pdf.ark", "num_pdfs"])
    print(out)
    return 0
