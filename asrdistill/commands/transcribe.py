"""``asrdistill transcribe``: WAV files -> words with an export dir (one line per file: ``<path> <words>``)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transcribe", help="transcribe WAV files with an export dir",
                       description="Compute fbank with the export's options, normalise each file with its own "
                                   "CMVN statistics (files have no speaker), score with the exported network and "
                                   "decode with its HCLG graph. Prints `<path> <words>` per file, in order.")
    p.add_argument("export_dir", help="export dir written by `asrdistill export`")
    p.add_argument("wavs", nargs="+", help="audio files (mono, or see --channel)")
    p.add_argument("--channel", type=int, default=None, metavar="N",
                   help="channel of multichannel files (0 = the first); default: files must be mono")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="run the network with TorchScript (default) or ONNX Runtime")
    p.add_argument("--beam", type=float, help="decoding beam (default: the export's, else 13)")
    p.add_argument("--max-active", type=int, help="decoder max active states")
    p.add_argument("--acoustic-scale", type=float, help="acoustic scale (default: the export's)")
    p.add_argument("--nj", type=int, default=1, help="decoding processes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from asrdistill.export.transcribe import transcribe

    results = transcribe(args.export_dir, args.wavs, backend=args.backend, beam=args.beam, nj=args.nj,
                         acoustic_scale=args.acoustic_scale, max_active=args.max_active, channel=args.channel,
                         progress=len(args.wavs) > 1 and sys.stderr.isatty())
    for path, words in results:
        print(f"{path} {words}".rstrip(), flush=True)
    return 0
