"""``asrdistill export``: write a trained acoustic model as a self-contained export dir (TorchScript + ONNX)."""
from __future__ import annotations

import argparse

from asrdistill.errors import UserFacingError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained DNN (or ensemble) with its graph for transcription",
                       description="Write OUT/ with the acoustic model as TorchScript (model.pt) and ONNX "
                                   "(model.onnx): input the CMVN'd fbank frames of one utterance [T, 40], output "
                                   "per-frame pdf log-likelihoods (splicing and the priors inside), plus "
                                   "fbank.json, cmvn.json, log_priors.npy, HCLG.fst, words.txt, the transition "
                                   "model and manifest.json (versions, sha256s, metrics). "
                                   "`asrdistill transcribe OUT a.wav` then decodes audio files.")
    p.add_argument("model", help="DNN model file (final.mdl), or an ensemble.json / ensemble dir")
    p.add_argument("out", help="export dir to write (replaced atomically)")
    p.add_argument("--graph", help="graph dir with HCLG.fst and words.txt (from make-graph)")
    p.add_argument("--trans-model", help="GMM-HMM model file (final.mdl) the graph and alignments come from")
    p.add_argument("--feats", help="training feature dir (fbank.json, frames.json: CMVN options)")
    p.add_argument("--acoustic-scale", type=float, default=0.1, help="acoustic scale for decoding (default 0.1)")
    p.add_argument("--beam", type=float, help="decoding beam to store as the default")
    p.add_argument("--max-active", type=int, help="decoder max active states to store as the default")
    p.add_argument("--no-state", action="store_true",
                   help="leave out model.state.pt (the weights for loading back into asrdistill)")
    p.add_argument("--metrics", action="append", default=[], metavar="NAME=FILE_OR_VALUE",
                   help="a measured result to record in the manifest: NAME=path of a JSON file (e.g. a decode "
                        "dir's decode.json) or NAME=number; repeatable")
    p.set_defaults(func=run)


def _parse_metrics(items: list[str]) -> dict:
    import json
    from pathlib import Path

    out: dict = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UserFacingError(f"--metrics: expected NAME=FILE_OR_VALUE, got {item!r}")
        path = Path(value)
        if path.is_file():
            try:
                out[name] = json.loads(path.read_text())
            except json.JSONDecodeError as err:
                raise UserFacingError(f"{path}: not a JSON file ({err})") from None
        else:
            try:
                out[name] = float(value)
            except ValueError:
                raise UserFacingError(f"--metrics {name}: {value!r} is neither a file nor a number") from None
    return out


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from asrdistill.export.export import export_model
    from asrdistill.export.runtime import read_manifest

    from asrdistill.commands import command_step
    from asrdistill.nnet.config import member_files

    metrics_files = [v for _, _, v in (m.partition("=") for m in args.metrics) if Path(v).is_file()]
    step = command_step(args, "export", args.out, {"model": [str(f) for f in member_files([args.model])],
                                                   "graph": args.graph, "trans_model": args.trans_model,
                                                   "feats": args.feats, "metrics_files": metrics_files},
                        exclude=("out",))
    if step.skip():
        print(f"{args.out}: already exported")
        return 0
    step.begin()
    decode_options = {k: v for k, v in (("beam", args.beam), ("max_active", args.max_active)) if v is not None}
    out = export_model(args.model, args.out, graph_dir=args.graph, trans_model_path=args.trans_model,
                       feat_dir=args.feats, metrics=_parse_metrics(args.metrics),
                       acoustic_scale=args.acoustic_scale, decode_options=decode_options,
                       keep_state=not args.no_state)
    step.complete(["manifest.json", "model.pt", "model.onnx"])
    manifest = read_manifest(out)
    files = manifest["files"]
    diff = manifest["export_check"]["max_abs_diff"]
    print(f"{out}: {manifest['model']['kind']} with {manifest['num_pdfs']} pdfs, "
          f"model.pt {files['model.pt']['bytes'] / 1e6:.1f} MB, model.onnx {files['model.onnx']['bytes'] / 1e6:.1f} MB"
          + (f", HCLG.fst {files['HCLG.fst']['bytes'] / 1e6:.1f} MB" if "HCLG.fst" in files else ", no graph")
          + f"; max |diff| vs. original: TorchScript {diff['torchscript']:.2g}, ONNX {diff['onnx']:.2g}")
    return 0
