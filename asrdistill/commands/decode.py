"""``asrdistill decode``: decode a data set with HCLG from GMM features or from DNN log-likelihoods."""
from __future__ import annotations

import argparse

from asrdistill.errors import UserFacingError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode with HCLG (GMM features or pdf log-likelihood matrices)",
                       description="Viterbi beam search (Kaldi's LatticeFasterDecoder, best path) over the "
                                   "graph. Acoustic scores: the GMM of --model on the frame store --feats, or "
                                   "pdf log-likelihoods from --loglikes (Kaldi scp/ark of [T, num_pdfs] "
                                   "matrices: log-posterior minus log-prior). Writes OUT/text, decode.json and, "
                                   "when --data has a text file, wer, per_utt. Several --acoustic-scales (and "
                                   "--word-ins-penalties) are decoded in one pass and the best on --data's "
                                   "text is kept.")
    p.add_argument("--graph", required=True, help="graph dir (HCLG.fst, words.txt) from make-graph")
    p.add_argument("--model", required=True, help="GMM-HMM model (final.mdl): transition model (and GMMs)")
    p.add_argument("--out", required=True, help="decode dir to write")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--feats", help="feature dir with the frame store (GMM decoding)")
    src.add_argument("--loglikes", help="Kaldi .scp or .ark of pdf log-likelihood matrices (DNN decoding)")
    src.add_argument("--dnn", nargs="+", metavar="MODEL",
                     help="DNN model(s) (final.mdl; several or an ensemble dir = ensemble) scored on --dnn-feats")
    p.add_argument("--dnn-feats", help="frame store of the data to decode, for --dnn")
    p.add_argument("--combine", choices=["arithmetic", "geometric"], default="arithmetic",
                   help="ensemble combination for several --dnn models")
    p.add_argument("--device", default="auto", help="device of the DNN forward pass (auto: cuda if present)")
    p.add_argument("--data", help="Kaldi data dir (its text is the reference; its utterances are decoded)")
    p.add_argument("--acoustic-scale", type=float, default=0.1, help="acoustic scale (inverse LM weight)")
    p.add_argument("--acoustic-scales", help="comma-separated scales to sweep, e.g. 0.05,0.067,0.083,0.1,0.125")
    p.add_argument("--word-ins-penalty", type=float, default=0.0,
                   help="graph cost added per output word (Kaldi's local/score.sh wip, same units)")
    p.add_argument("--word-ins-penalties", help="comma-separated penalties to sweep with the scales (or with "
                                                "--lmwts: default 0,0.5,1.0)")
    p.add_argument("--lmwts", help="lattice sweep on --data's text (as Kaldi's local/score.sh): LM weights, "
                                   "acoustic scale 1/LMWT, as FIRST-LAST (step 1) or a comma list, e.g. 5-20; "
                                   "one decode, lattices rescored at every (LMWT, penalty), grid extended while "
                                   "its best point is on an edge")
    p.add_argument("--decode-lmwt", type=float, help="LM weight the lattices are decoded at (default: the middle "
                                                     "of --lmwts)")
    p.add_argument("--no-extend-grid", action="store_true", help="keep the --lmwts x penalties grid as given")
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--max-active", type=int, default=7000)
    p.add_argument("--min-active", type=int, default=200)
    p.add_argument("--lattice-beam", type=float, default=6.0)
    p.add_argument("--nj", type=int, default=1, help="decoding processes")
    from asrdistill.commands.cluster_options import add_scheduler_option
    add_scheduler_option(p, "the decoding of the utterances")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replications for the WER interval")
    p.add_argument("--allow-pipes", action="store_true",
                   help="run --loglikes scp entries that are commands ('cmd |'); off by default")
    p.set_defaults(func=run)


def _floats(option: str, value: str | None) -> list[float] | None:
    if not value:
        return None
    try:
        return [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise UserFacingError(f"{option}: expected comma-separated numbers, got {value!r}") from None


def _lmwts(value: str) -> list[float]:
    if "-" in value.strip().lstrip("-") and "," not in value:
        first, _, last = value.partition("-")
        try:
            a, b = float(first), float(last)
        except ValueError:
            raise UserFacingError(f"--lmwts: expected FIRST-LAST or a comma list, got {value!r}") from None
        if b < a:
            raise UserFacingError(f"--lmwts: {value!r} is an empty range")
        return [a + i for i in range(int(b - a) + 1)]
    out = _floats("--lmwts", value)
    if not out:
        raise UserFacingError("--lmwts: no LM weights given")
    return out


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from asrdistill.commands import command_step
    from asrdistill.nnet.config import member_files

    if args.dnn and not args.dnn_feats:
        raise UserFacingError("--dnn needs --dnn-feats (the frame store of the data to decode)")
    dnn = [str(f) for f in member_files(args.dnn)] if args.dnn else None
    step = command_step(args, "decode", args.out,
                        {"graph": args.graph, "model": args.model, "feats": args.feats, "loglikes": args.loglikes,
                         "dnn": dnn, "dnn_feats": args.dnn_feats, "data": args.data}, exclude=("out",))
    if step.skip():
        print(f"{args.out}: already decoded")
        return 0
    step.begin()
    from asrdistill.decode.decoder import DecodeOptions, decode_and_score
    from asrdistill.decode.score import read_text
    from asrdistill.decode.sources import dnn_source, gmm_source, matrix_source
    from asrdistill.hmm.model import GmmHmm

    grid = None
    if args.lmwts:
        from asrdistill.decode.decoder import SweepGrid
        pens = _floats("--word-ins-penalties", args.word_ins_penalties)
        grid = SweepGrid(lmwts=tuple(_lmwts(args.lmwts)), decode_lmwt=args.decode_lmwt,
                         extend=not args.no_extend_grid, **({"penalties": tuple(pens)} if pens else {}))
    model = GmmHmm.load(args.model)
    options = DecodeOptions(beam=args.beam, max_active=args.max_active, min_active=args.min_active,
                            lattice_beam=args.lattice_beam, acoustic_scale=args.acoustic_scale,
                            word_ins_penalty=args.word_ins_penalty)
    refs = read_text(Path(args.data) / "text") if args.data and (Path(args.data) / "text").is_file() else None
    if args.feats:
        utts, source, am = gmm_source(model, args.feats, refs)
    elif dnn:
        utts, source, am = dnn_source(dnn, args.dnn_feats, refs, device=args.device, combine=args.combine)
    else:
        utts, source, am = matrix_source(args.loglikes, refs, allow_pipes=args.allow_pipes)
    summary = decode_and_score(args.graph, model.trans_model, source, args.out, utts=utts, ref_text=refs,
                               acoustic_scales=_floats("--acoustic-scales", args.acoustic_scales), options=options,
                               am=am, nj=args.nj, bootstrap=args.bootstrap, scheduler=args.scheduler,
                               word_ins_penalties=None if grid else _floats("--word-ins-penalties",
                                                                            args.word_ins_penalties), grid=grid)
    step.complete(["text", "decode.json"], info={"acoustic_scale": summary["acoustic_scale"],
                                                 "word_ins_penalty": summary["word_ins_penalty"],
                                                 **({"wer": summary["wer"]["wer"]} if "wer" in summary else {})})
    st = {**summary["stats"], **summary["timing"]}
    print(f"{args.out}: {st['utterances']} utterances, acoustic scale {summary['acoustic_scale']:g}, "
          f"word insertion penalty {summary['word_ins_penalty']:g}, "
          f"RTF {st['rtf']:.4f} ({st['decode_seconds']:.1f} s decoding for {st['audio_seconds']:.1f} s audio)")
    if "wer" in summary:
        print(summary["wer"]["line"])
    return 0
