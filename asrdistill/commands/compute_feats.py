"""``asrdistill compute-feats DATA_DIR FEAT_DIR``: fbank + per-speaker CMVN + frame store of a data dir."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compute-feats", help="compute 40-dim log-mel fbank, per-speaker CMVN and the frame store",
        description="Compute Kaldi-compatible fbank features of a Kaldi data dir into FEAT_DIR: feats.ark/scp "
                    "(raw), cmvn.ark/scp (per-speaker stats), and frames.f32/frames.json (CMVN-applied frames "
                    "for training). A FEAT_DIR finished with the same data and options is skipped.")
    p.add_argument("data_dir", metavar="DATA_DIR", help="Kaldi data dir (wav.scp, utt2spk, spk2utt, ...)")
    p.add_argument("feat_dir", metavar="FEAT_DIR", help="output feature dir")
    p.add_argument("--nj", type=int, default=2, help="number of parallel jobs (default: 2)")
    from asrdistill.commands.cluster_options import add_scheduler_option
    add_scheduler_option(p, "the utterance chunks")
    p.add_argument("--norm-vars", action="store_true", help="also normalise variances in CMVN (default: means only)")
    p.add_argument("--num-mel-bins", type=int, default=40, help="number of mel bins (default: 40)")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="require this sample rate (default: whatever the data has, one rate per data dir)")
    p.add_argument("--dither", type=float, default=0.0, help="dithering constant (default: 0, deterministic)")
    p.add_argument("--config", metavar="FBANK_JSON", default=None,
                   help="fbank options as JSON (fields of FbankConfig); overrides the options above")
    p.add_argument("--channel", type=int, default=None, metavar="N",
                   help="channel of multichannel recordings (0 = the first); default: recordings must be mono")
    p.add_argument("--allow-pipes", action="store_true", help="allow shell pipes ('cmd |') in wav.scp")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from asrdistill.commands import command_step
    from asrdistill.errors import UserFacingError
    from asrdistill.features.extract import compute_features
    from asrdistill.features.fbank import FbankConfig

    if args.config:
        try:
            config = FbankConfig.from_json(Path(args.config).read_text())
        except (OSError, ValueError, TypeError) as err:
            raise UserFacingError(f"{args.config}: cannot read fbank options: {err}") from None
    else:
        config = FbankConfig(num_mel_bins=args.num_mel_bins, sample_rate=args.sample_rate, dither=args.dither)
    step = command_step(args, "compute-feats", args.feat_dir, {"data_dir": args.data_dir, "config": args.config},
                        exclude=("feat_dir",), options={"fbank": config.to_dict(), "norm_vars": args.norm_vars,
                                                        **({"channel": args.channel} if args.channel is not None
                                                           else {})})
    if step.skip():
        print(f"{args.feat_dir}: features already complete")
        return 0
    step.begin()
    summary = compute_features(args.data_dir, args.feat_dir, nj=args.nj, config=config, norm_vars=args.norm_vars,
                               allow_pipes=args.allow_pipes, progress=not args.no_progress,
                               scheduler=args.scheduler, channel=args.channel)
    step.complete(["frames.f32", "frames.json", "feats.ark", "cmvn.ark", "fbank.json"],
                  info={"summary": dataclasses.asdict(summary)})
    print(summary)
    return 0
