"""The recipe's results: frame accuracy of every DNN system on dev and test (measured here, from the models
and the triphone alignments), WER from the decode dirs, laid out like the paper's Table 1 (baseline /
ensemble / distilled) and Table 5 (a small share of the training data with hard vs soft targets), plus the
alignment boundary accuracy, the LM and graph sizes, and learning-curve plots.

Choices are made on dev only (the temperature of the distilled model, the acoustic scale); test is reported.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from asrdistill.errors import UserFacingError
from asrdistill.utils import get_logger, write_json_atomic, write_text_atomic

log = get_logger(__name__)


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _wer(manifest, name: str, split: str) -> dict | None:
    d = manifest.decode_dir(name, split) if manifest.has(name) else None
    info = _json(d / "decode.json") if d else None
    if not info or "wer" not in info:
        return None
    w = info["wer"]
    st = info.get("stats", {})
    return {"wer": w["wer"], "line": w["line"], "ci95": w.get("ci95"), "acoustic_scale": info["acoustic_scale"],
            "word_ins_penalty": info.get("word_ins_penalty", 0.0),
            "utterances": st.get("utterances"), "rtf": st.get("rtf"), "wall_rtf": st.get("wall_rtf")}


def _fmt_wer(w: dict | None) -> str:
    return "-" if w is None else f"{w['wer']:.2f}"


def _history(model_dir: Path) -> list[dict]:
    info = _json(model_dir / "history.json")
    return info.get("history", []) if isinstance(info, dict) else (info or [])


def _plot_curves(curves: dict[str, list[dict]], path: Path, title: str, keys=("dev_acc",)) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, hist in curves.items():
        for key in keys:
            pts = [(h["epoch"], h[key]) for h in hist if h.get(key) == h.get(key) and h.get(key) is not None
                   and h["epoch"] > 0]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"{name} {key.replace('_', ' ')}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("frame accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_results(exp: str | os.PathLike, out: str | os.PathLike, command: str = "", device: str = "auto") -> dict:
    """Measure and write ``out/RESULTS.md``, ``out/results.json`` and ``out/curves_*.png`` from the systems
    manifest of ``exp`` (see :mod:`asrdistill.experiment.manifest`)."""
    from asrdistill.experiment.layout import ExpLayout
    from asrdistill.experiment.manifest import Manifest
    from asrdistill.nnet.data import load_frame_dataset, read_num_pdfs
    from asrdistill.nnet.device import resolve_device
    from asrdistill.nnet.ensemble import load_ensemble
    from asrdistill.nnet.evaluate import ensemble_report, evaluate_frames
    from asrdistill.nnet.model import load_model

    exp, out = Path(exp), Path(out)
    manifest = Manifest(exp)
    stale = manifest.stale()
    if stale:
        raise UserFacingError(f"{manifest.path}: results would mix old and new work; rerun the stages of: "
                              + "; ".join(f"{n} ({', '.join(w)})" for n, w in stale.items()))
    sets_paths = manifest.get("sets")
    layout = ExpLayout.of(Path(sets_paths["train"]["data"]).parent, exp)
    dev_device = resolve_device(device)
    num_pdfs = read_num_pdfs(sets_paths["train"]["ali"])
    sets = {s: load_frame_dataset(sets_paths[s]["feats"], sets_paths[s]["ali"], num_pdfs) for s in ("dev", "test")}

    res: dict[str, Any] = {"command": command, "num_pdfs": num_pdfs}
    res["corpus"] = _json(layout.corpus_summary)
    res["alignment_boundaries"] = _json(layout.boundaries)
    if layout.boundaries.with_suffix(".md").is_file():
        res["alignment_boundaries_md"] = layout.boundaries.with_suffix(".md").read_text()
    graph_dir = Path(manifest.get("decode:gmm_tri:test", "inputs.graph.path")) if manifest.decode_dir(
        "gmm_tri", "test") else layout.graph
    res["graph"] = _json(graph_dir / "graph.json")
    res["lm"] = _json(layout.lm / "lm.json")
    res["stage_seconds"] = manifest.data.get("stage_seconds", {})

    # Ensemble members, their mean, the ensemble (one pass over each set).
    members = sorted((n for n in manifest.names("dnn") if n.startswith("member")), key=lambda n: int(n[6:]))
    report = ensemble_report(list(load_ensemble([manifest.model_path(m) for m in members], device=dev_device).members),
                             sets, dev_device)
    res["ensemble"] = report
    n = len(members)

    def acc(name: str) -> dict[str, float]:
        model = load_model(manifest.model_path(name), dev_device)
        return {s: evaluate_frames(model, d)["frame_acc"] for s, d in sets.items()}

    student_names = [m for m in manifest.names("student") if m.startswith("student_T")]
    students = {m: acc(m) for m in student_names}
    chosen = manifest.system("distilled") if manifest.has("distilled") else None
    best_name = chosen["resolved"] if chosen else None
    best_T = manifest.get("distilled", "options.temperature") if chosen else None
    res["distillation"] = {"students": students, "chosen_on_dev": best_name, "temperature": best_T}

    base = {s: report[s]["members"][0]["frame_acc"] for s in sets}
    ens = {s: report[s]["arithmetic"]["frame_acc"] for s in sets}
    rows = [
        ("Baseline (member 0)", base, "baseline"),
        (f"Mean of the {n} members", {s: report[s]["member_mean"]["frame_acc"] for s in sets}, None),
        (f"{n}xEnsemble (arithmetic mean)", ens, "ensemble"),
        (f"{n}xEnsemble (geometric mean)", {s: report[s]["geometric"]["frame_acc"] for s in sets}, None),
    ]
    if best_name:
        rows.append((f"Distilled single model (T={best_T:g}, chosen on dev)", students[best_name], "distilled"))
    table1 = [{"system": "GMM-HMM triphone", "dev_frame_acc": None, "test_frame_acc": None,
               "dev_wer": _wer(manifest, "gmm_tri", "dev"), "test_wer": _wer(manifest, "gmm_tri", "test")}]
    for name, a, dec in rows:
        table1.append({"system": name, "dev_frame_acc": a["dev"], "test_frame_acc": a["test"],
                       "dev_wer": _wer(manifest, dec, "dev") if dec else None,
                       "test_wer": _wer(manifest, dec, "test") if dec else None})
    res["table1"] = table1
    if best_name:
        gains = {}
        for s in sets:
            g = ens[s] - base[s]
            gains[s] = None if abs(g) < 1e-9 else (students[best_name][s] - base[s]) / g
        res["gain_kept"] = gains

    # Table 5: the subset pair, with training-set accuracy on the very subset each model saw.
    table5 = []
    subset_rows = [("Baseline, 100% of the training data (member 0)", "baseline", None),
                   ("Hard targets, subset (early stopping)", "hard_subset", "hard_subset"),
                   ("Soft targets from the full-data ensemble, subset", "soft_subset", "soft_subset")]
    train_full = load_frame_dataset(sets_paths["train"]["feats"], sets_paths["train"]["ali"], num_pdfs)
    for label, name, dec in subset_rows:
        if not manifest.has(name):
            continue
        d = manifest.model_path(name).parent
        info = _json(d / "train_data.json") or {"subset": 1.0, "subset_seed": 0}
        train = train_full if info["subset"] >= 1.0 else train_full.subset(info["subset"], info["subset_seed"])
        model = load_model(manifest.model_path(name), dev_device)
        hist = _history(d)
        table5.append({"system": label, "subset": info["subset"], "train_frames": int(len(train.targets)),
                       "epochs": max((h["epoch"] for h in hist), default=None),
                       "train_frame_acc": evaluate_frames(model, train)["frame_acc"],
                       "dev_frame_acc": evaluate_frames(model, sets["dev"])["frame_acc"],
                       "test_frame_acc": evaluate_frames(model, sets["test"])["frame_acc"],
                       "dev_wer": _wer(manifest, dec, "dev") if dec else None,
                       "test_wer": _wer(manifest, dec, "test") if dec else None})
        del model
    res["table5"] = table5

    # Learning curves.
    out.mkdir(parents=True, exist_ok=True)
    _plot_curves({m: _history(manifest.model_path(m).parent) for m in members}, out / "curves_ensemble.png",
                 "Ensemble members: dev frame accuracy")
    _plot_curves({m: _history(manifest.model_path(m).parent) for m in student_names}, out / "curves_distill.png",
                 "Distilled students: dev frame accuracy")
    _plot_curves({m: _history(manifest.model_path(m).parent) for m in ("hard_subset", "soft_subset")
                  if manifest.has(m)},
                 out / "curves_subset.png", "Table 5 pair: train (running) and dev frame accuracy",
                 keys=("train_acc", "dev_acc"))
    write_json_atomic(out / "results.json", res)
    write_text_atomic(out / "RESULTS.md", format_results(res))
    return res


def format_results(res: dict) -> str:
    lines = ["# Results", "", "Made by:", "", "```", res.get("command") or "(unknown command)", "```", ""]
    c = res.get("corpus")
    if c:
        lines += ["## Corpus", "", "| split | hours | speakers | utterances | frames |", "|---|---|---|---|---|"]
        for s, r in sorted(c["splits"].items(), key=lambda kv: ["train", "dev", "test"].index(kv[0])
                           if kv[0] in ("train", "dev", "test") else 9):
            lines.append(f"| {s} | {r['hours']:.2f} | {r['speakers']} | {r['utterances']} | {r.get('frames', '-')} |")
        lines += ["", f"Vocabulary {c.get('vocabulary')} words, {c.get('nonsilence_phones')} phones + silence; "
                      f"SNR {c.get('snr_db')} dB, RT60 {c.get('rt60')} s; {res['num_pdfs']} tied triphone states.",
                  ""]
    lines += ["## Table 1: frame accuracy and WER (cf. Hinton et al. 2015, Table 1)", "",
              "| system | dev frame acc % | test frame acc % | dev WER % | test WER % | test WER 95% CI |",
              "|---|---|---|---|---|---|"]
    for r in res["table1"]:
        tw = r["test_wer"]
        ci = f"[{tw['ci95'][0]:.2f}, {tw['ci95'][1]:.2f}]" if tw and tw.get("ci95") else "-"
        lines.append(f"| {r['system']} | {_pct(r['dev_frame_acc'])} | {_pct(r['test_frame_acc'])} | "
                     f"{_fmt_wer(r['dev_wer'])} | {_fmt_wer(tw)} | {ci} |")
    dev_utts = {r["dev_wer"]["utterances"] for r in res["table1"] if r.get("dev_wer")}
    test_utts = {r["test_wer"]["utterances"] for r in res["table1"] if r.get("test_wer")}
    rtfs = [(r["system"], r["test_wer"]["rtf"]) for r in res["table1"] if r.get("test_wer") and r["test_wer"].get("rtf")]
    if dev_utts or test_utts:
        lines += ["", f"Dev WER: on the {sorted(dev_utts)} dev utterances where the acoustic scale was chosen "
                      f"(the best of the sweep); test WER: {sorted(test_utts)} test utterances at that scale. "
                      "Decoding real-time factor on test (decode seconds per audio second, per process): "
                      + ", ".join(f"{n} {x:.3f}" for n, x in rtfs) + "."]
    if res.get("gain_kept"):
        g = res["gain_kept"]
        lines += ["", "Share of the ensemble's frame-accuracy gain over the baseline kept by the distilled model "
                      f"(paper: 86%): dev {_pct(g['dev'])}%, test {_pct(g['test'])}%."]
    d = res.get("distillation", {})
    if d.get("students"):
        lines += ["", "### Distilled students (all temperatures; the one chosen on dev is decoded)", "",
                  "| student | dev frame acc % | test frame acc % |", "|---|---|---|"]
        for name, a in d["students"].items():
            mark = " (chosen)" if name == d.get("chosen_on_dev") else ""
            lines.append(f"| {name}{mark} | {_pct(a['dev'])} | {_pct(a['test'])} |")
        lines += ["", "`_onthefly`: the teacher ensemble run on every batch; the others read the teacher cache."]
    if res.get("table5"):
        lines += ["", "## Table 5: soft targets as a regularizer (cf. Table 5)", "",
                  "| system | train frames | train frame acc % | dev frame acc % | test frame acc % | test WER % |",
                  "|---|---|---|---|---|---|"]
        for r in res["table5"]:
            lines.append(f"| {r['system']} | {r['train_frames']} | {_pct(r['train_frame_acc'])} | "
                         f"{_pct(r['dev_frame_acc'])} | {_pct(r['test_frame_acc'])} | {_fmt_wer(r['test_wer'])} |")
    if res.get("alignment_boundaries_md"):
        lines += ["", "## Alignment quality: phone boundaries vs the synthesizer's ground truth", "",
                  res["alignment_boundaries_md"].strip()]
    lm, graph = res.get("lm") or {}, res.get("graph") or {}
    if lm or graph:
        lines += ["", "## LM and graph", ""]
        if lm:
            dev = lm.get("dev_perplexity") or {}
            lines.append(f"- LM: {lm.get('order')}-gram {lm.get('source', '')}, n-grams {lm.get('ngrams')}, "
                         f"dev perplexity {dev.get('perplexity', float('nan')):.1f}")
        if graph:
            lines.append(f"- HCLG: {graph.get('states')} states, {graph.get('arcs')} arcs, "
                         f"{graph.get('bytes', 0) / 1e6:.1f} MB, built in {graph.get('seconds')} s")
    lines += ["", "Learning curves: `curves_ensemble.png`, `curves_distill.png`, `curves_subset.png`.", ""]
    return "\n".join(lines)
