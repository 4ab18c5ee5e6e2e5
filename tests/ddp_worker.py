"""One rank of a DDP test run, started by torchrun: ``ddp_worker.py REPORT_DIR [--kill-after EPOCH] -- CLI ARGS``.

Runs ``asrdistill.cli.main(CLI ARGS)``. Every rank records, through a Python audit hook, every file it
creates, opens for writing, renames or removes under the ``--out`` dir of the command, and writes that list to
``REPORT_DIR/rank<R>.json`` (outside the output dir) at exit. ``--kill-after E`` kills this process
(SIGKILL) right after epoch E's checkpoint is written on rank 0 and every rank has passed the barrier,
as a crash of the whole job would.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def main() -> int:
    argv = sys.argv[1:]
    sep = argv.index("--")
    own, cli_args = argv[:sep], argv[sep + 1:]
    report = Path(own[0])
    kill_after = int(own[own.index("--kill-after") + 1]) if "--kill-after" in own else None
    rank = int(os.environ.get("RANK", "0"))
    out = str(Path(cli_args[cli_args.index("--out") + 1]).resolve())
    writes: list[list[str]] = []

    def write_report() -> None:
        report.mkdir(parents=True, exist_ok=True)
        (report / f"rank{rank}.json").write_text(json.dumps(writes))

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode = args[0], args[1]
            if isinstance(path, (str, os.PathLike)) and mode and any(c in str(mode) for c in "wax+"):
                if str(Path(path).resolve()).startswith(out):
                    writes.append([event, str(path)])
        elif event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree"):
            path = args[0]
            if isinstance(path, (str, os.PathLike)) and str(Path(path).resolve()).startswith(out):
                writes.append([event, str(path)])

    sys.addaudithook(hook)
    if kill_after is not None:
        from asrdistill.nnet import distributed as dist
        from asrdistill.nnet import train

        original = train.save_checkpoint

        def save_then_die(run, state):
            original(run, state)
            dist.barrier()
            if state.epoch == kill_after:
                write_report()
                os.kill(os.getpid(), signal.SIGKILL)

        train.save_checkpoint = save_then_die
    from asrdistill.cli import main as cli_main

    try:
        return cli_main(cli_args)
    finally:
        write_report()


if __name__ == "__main__":
    sys.exit(main())
