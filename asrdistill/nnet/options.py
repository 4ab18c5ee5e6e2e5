"""Command-line options shared by the DNN training commands (train-dnn, train-ensemble, distill).

Only argparse here; torch and the data are imported by the functions that need them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

PRESET_NAMES = ("paper", "medium", "small", "tiny")  # keep in sync with model.PRESETS (not imported: torch)


def add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--feats", required=True, help="training feature dir (frame store)")
    g.add_argument("--ali", required=True, help="training alignment dir (pdf.scp, num_pdfs)")
    g.add_argument("--dev-feats", required=True, help="dev feature dir (newbob / early stopping)")
    g.add_argument("--dev-ali", required=True, help="dev alignment dir")
    g.add_argument("--subset", type=float, default=1.0, metavar="FRACTION",
                   help="train on this fraction of the training utterances (whole utterances; default 1)")
    g.add_argument("--subset-seed", type=int, default=0, help="seed of the subset choice")


def add_model_options(p: argparse.ArgumentParser, default_preset: str | None = "small") -> None:
    g = p.add_argument_group("model")
    g.add_argument("--preset", choices=PRESET_NAMES, default=default_preset,
                   help="architecture: paper = 8 x 2560, medium = 4 x 512, small = 3 x 256, tiny = 2 x 128")
    g.add_argument("--hidden-layers", type=int, help="override the preset's number of hidden layers")
    g.add_argument("--hidden-dim", type=int, help="override the preset's hidden layer width")
    g.add_argument("--left", type=int, default=20, help="left context frames (default 20)")
    g.add_argument("--right", type=int, default=5, help="right context frames (default 5)")


def add_train_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--out", required=True, help="output dir (final.mdl, log.txt, history.json, tb/, checkpoints/)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--max-epochs", type=int, default=20)
    g.add_argument("--min-epochs", type=int, default=1)
    g.add_argument("--batch-size", type=int, default=256)
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    g.add_argument("--lr", type=float, default=0.02, help="initial learning rate (default 0.02)")
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--schedule", choices=("newbob", "constant"), default="newbob")
    g.add_argument("--start-halving-impr", type=float, default=0.01)
    g.add_argument("--end-halving-impr", type=float, default=0.001)
    g.add_argument("--early-stop", type=int, metavar="EPOCHS",
                   help="stop after this many epochs without a better dev CE (keeps the best)")
    g.add_argument("--threads", type=int, help="torch CPU threads")
    g.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    g.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    g.add_argument("--no-tensorboard", action="store_true")


def train_config_from_args(args: argparse.Namespace):
    from asrdistill.nnet.train import DnnTrainConfig

    return DnnTrainConfig(max_epochs=args.max_epochs, min_epochs=args.min_epochs, batch_size=args.batch_size,
                       optimizer=args.optimizer, learning_rate=args.lr, momentum=args.momentum,
                       weight_decay=args.weight_decay, schedule=args.schedule,
                       start_halving_impr=args.start_halving_impr, end_halving_impr=args.end_halving_impr,
                       early_stop_patience=args.early_stop, seed=args.seed, num_threads=args.threads,
                       device=args.device, tensorboard=not args.no_tensorboard)


def model_config_from_args(args: argparse.Namespace, num_pdfs: int):
    """A DnnConfig from --preset and overrides; None when no preset and no overrides were given."""
    import dataclasses

    from asrdistill.nnet.model import DnnConfig

    if args.preset is None and args.hidden_layers is None and args.hidden_dim is None:
        return None
    cfg = DnnConfig.from_preset(args.preset or "small", num_pdfs, left=args.left, right=args.right)
    if args.hidden_layers is not None:
        cfg = dataclasses.replace(cfg, hidden_layers=args.hidden_layers)
    if args.hidden_dim is not None:
        cfg = dataclasses.replace(cfg, hidden_dim=args.hidden_dim)
    return cfg


def load_train_dev(args: argparse.Namespace):
    """(train, dev) FrameDatasets from the data options (train subset applied)."""
    from asrdistill.nnet.data import load_frame_dataset, read_num_pdfs

    num_pdfs = read_num_pdfs(args.ali)
    train = load_frame_dataset(args.feats, args.ali, num_pdfs)
    dev = load_frame_dataset(args.dev_feats, args.dev_ali, num_pdfs)
    if args.subset < 1.0:
        train = train.subset(args.subset, args.subset_seed)
    # Record which training data the model saw (the results stage re-scores the same subset).
    from asrdistill.utils import write_json_atomic

    write_json_atomic(Path(args.out) / "train_data.json",
                      {"feats": str(args.feats), "ali": str(args.ali), "dev_feats": str(args.dev_feats),
                       "dev_ali": str(args.dev_ali), "subset": args.subset, "subset_seed": args.subset_seed,
                       "utterances": len(train.utts), "frames": int(len(train.targets))})
    return train, dev
