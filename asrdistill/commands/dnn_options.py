"""Command-line options shared by the DNN commands (train-dnn, train-ensemble, distill), and the typed configs
built from them. Every default comes from the config dataclasses (:mod:`asrdistill.nnet.config`,
:mod:`asrdistill.distill.config`); none is written here."""
from __future__ import annotations

import argparse

from asrdistill.nnet.config import PRECISIONS, PRESETS, DnnConfig, DnnTrainConfig

_TRAIN = DnnTrainConfig()
_ARCH = DnnConfig(num_pdfs=1)


def add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--feats", required=True, help="training feature dir (frame store)")
    g.add_argument("--ali", required=True, help="training alignment dir (pdf.scp, num_pdfs)")
    g.add_argument("--dev-feats", required=True, help="dev feature dir (newbob / early stopping)")
    g.add_argument("--dev-ali", required=True, help="dev alignment dir")
    g.add_argument("--subset", type=float, default=1.0, metavar="FRACTION",
                   help="train on this fraction of the training utterances (whole utterances; default 1)")
    g.add_argument("--subset-seed", type=int, default=0, help="seed of the subset choice")
    g.add_argument("--frames", choices=("auto", "memory", "mmap"), default="auto",
                   help="where the training frames live: 'memory' (a copy per process; on CUDA on the device), "
                        "'mmap' (read per batch from the frame store's memory map, shared by all processes), "
                        "'auto' = mmap under torchrun, else memory. Results are the same")


def add_model_options(p: argparse.ArgumentParser, default_preset: str | None = "small") -> None:
    g = p.add_argument_group("model")
    g.add_argument("--preset", choices=tuple(PRESETS), default=default_preset,
                   help="architecture: " + ", ".join(f"{k} = {n} x {d}" for k, (n, d) in PRESETS.items()))
    g.add_argument("--hidden-layers", type=int, help="override the preset's number of hidden layers")
    g.add_argument("--hidden-dim", type=int, help="override the preset's hidden layer width")
    g.add_argument("--left", type=int, help=f"left context frames (default {_ARCH.left})")
    g.add_argument("--right", type=int, help=f"right context frames (default {_ARCH.right})")


def add_train_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--out", required=True, help="output dir (final.mdl, log.txt, history.json, tb/, checkpoints/)")
    g.add_argument("--seed", type=int, default=_TRAIN.seed)
    g.add_argument("--max-epochs", type=int, default=_TRAIN.max_epochs)
    g.add_argument("--min-epochs", type=int, default=_TRAIN.min_epochs)
    g.add_argument("--batch-size", type=int, default=_TRAIN.batch_size)
    g.add_argument("--optimizer", choices=("sgd", "adam"), default=_TRAIN.optimizer)
    g.add_argument("--lr", type=float, default=_TRAIN.learning_rate,
                   help=f"initial learning rate (default {_TRAIN.learning_rate})")
    g.add_argument("--momentum", type=float, default=_TRAIN.momentum)
    g.add_argument("--weight-decay", type=float, default=_TRAIN.weight_decay)
    g.add_argument("--schedule", choices=("newbob", "constant"), default=_TRAIN.schedule)
    g.add_argument("--start-halving-impr", type=float, default=_TRAIN.start_halving_impr)
    g.add_argument("--end-halving-impr", type=float, default=_TRAIN.end_halving_impr)
    g.add_argument("--start-halving-epoch", type=int, metavar="EPOCH", default=_TRAIN.start_halving_epoch,
                   help="halve the learning rate after this epoch even while dev still improves by more than "
                        "--start-halving-impr (anneals within a small epoch budget)")
    g.add_argument("--keep-lr-epochs", type=int, metavar="N", default=_TRAIN.keep_lr_epochs,
                   help="the first N epochs keep the learning rate and are never rejected (Kaldi nnet1's "
                        "--keep-lr-iters); newbob's halving and stopping start after them (default %(default)s)")
    g.add_argument("--early-stop", type=int, metavar="EPOCHS", default=_TRAIN.early_stop_patience,
                   help="stop after this many epochs without a better dev criterion (keeps the best)")
    g.add_argument("--dev-criterion", choices=("ce", "error"), default=_TRAIN.dev_criterion,
                   help="what newbob's accept/reject, halving and stopping compare on dev: cross-entropy "
                        "(Kaldi nnet1) or frame error rate (default %(default)s)")
    g.add_argument("--threads", type=int, help="torch CPU threads")
    g.add_argument("--device", default=_TRAIN.device, help="auto (CUDA if present), cpu, cuda, cuda:N")
    g.add_argument("--precision", choices=PRECISIONS, default=_TRAIN.precision,
                   help="dtype of the training passes: auto = bf16 on CUDA and on CPUs with native bf16 (AVX512-BF16, "
                        "AMX; ~1.6x faster there), fp32 elsewhere; weights and optimiser stay fp32 "
                        "(default %(default)s)")
    g.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    g.add_argument("--no-tensorboard", action="store_true")


def train_config_from_args(args: argparse.Namespace) -> DnnTrainConfig:
    return DnnTrainConfig(max_epochs=args.max_epochs, min_epochs=args.min_epochs, batch_size=args.batch_size,
                          optimizer=args.optimizer, learning_rate=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay, schedule=args.schedule,
                          start_halving_impr=args.start_halving_impr, end_halving_impr=args.end_halving_impr,
                          start_halving_epoch=args.start_halving_epoch, keep_lr_epochs=args.keep_lr_epochs,
                          early_stop_patience=args.early_stop, dev_criterion=args.dev_criterion, seed=args.seed,
                          num_threads=args.threads,
                          device=args.device, precision=args.precision, tensorboard=not args.no_tensorboard)


def model_config_from_args(args: argparse.Namespace, num_pdfs: int, base: DnnConfig | None = None) -> DnnConfig:
    """The architecture: ``base`` (e.g. the teacher's) or the preset, with every given override applied
    (``--hidden-layers``, ``--hidden-dim``, ``--left``, ``--right``)."""
    import dataclasses

    if args.preset is not None or base is None:
        cfg = DnnConfig.from_preset(args.preset or "small", num_pdfs)
    else:
        cfg = base
    overrides = {k: v for k, v in (("hidden_layers", args.hidden_layers), ("hidden_dim", args.hidden_dim),
                                   ("left", args.left), ("right", args.right)) if v is not None}
    return dataclasses.replace(cfg, **overrides)


def data_inputs(args: argparse.Namespace) -> dict[str, str]:
    """The data options as step inputs (fingerprints)."""
    return {"feats": args.feats, "ali": args.ali, "dev_feats": args.dev_feats, "dev_ali": args.dev_ali}


def load_train_dev(args: argparse.Namespace):
    """(train, dev) FrameDatasets from the data options (train subset applied; memory-mapped per ``--frames``)."""
    from asrdistill.nnet import distributed as dist
    from asrdistill.nnet.data import load_training_sets

    frames = getattr(args, "frames", "auto")
    mmap = frames == "mmap" or (frames == "auto" and dist.launched())
    return load_training_sets(args.feats, args.ali, args.dev_feats, args.dev_ali, subset=args.subset,
                              subset_seed=args.subset_seed, record_in=args.out if dist.is_main() else None,
                              mmap=mmap)


class TrainingStep:
    """The experiment step of a DNN training command, DDP-aware: under torchrun only rank 0 reads and writes
    the step's records (skip / begin / complete); the others follow its decisions.

    ``skip`` and ``resume`` are known after construction (same on every rank).
    """

    def __init__(self, args: argparse.Namespace, name: str, inputs: dict, exclude: tuple[str, ...] = ("out",)):
        from asrdistill.commands import command_step
        from asrdistill.nnet import distributed as dist

        from asrdistill.errors import UserFacingError

        dist.init(getattr(args, "device", "auto"))
        if not dist.is_main():  # every rank runs the same code on the same data: rank 0 says it once
            import logging

            logging.getLogger().setLevel(logging.ERROR)
        self.step = None
        ok, skip, resume = 1, 0, 0
        try:
            if dist.is_main():
                self.step = command_step(args, name, args.out, inputs, exclude=exclude + ("frames",))
                skip = int(self.step.skip())
                if not skip:
                    resume = int(self.step.begin() and not args.no_resume)
        except BaseException:
            dist.broadcast_ints([0, 0, 0])  # the other ranks stop too instead of waiting
            raise
        ok, skip, resume = dist.broadcast_ints([ok, skip, resume])
        if not ok:
            raise UserFacingError(f"{args.out}: rank 0 could not start {name} (its message says why)")
        self.skip, self.resume = bool(skip), bool(resume)

    def complete(self, outputs, info=None) -> None:
        from asrdistill.nnet import distributed as dist

        if self.step is not None:
            self.step.complete(outputs, info=info)
        dist.barrier()
