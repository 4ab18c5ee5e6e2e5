"""The recipe's results, from the systems manifest: paper Tables 1 and 5 with speaker-level significance.

Everything is measured here or read from the decode dirs of the registered systems (``exp/systems.json``):

* frame accuracy of every DNN system (and of each ensemble member and their mean) on dev and test, against the
  triphone alignments, per utterance and per speaker;
* WER of every decoded system on dev (at the setting chosen on dev) and test (at that setting), per utterance
  and per speaker, with a 95% interval from the speaker-level bootstrap (:mod:`asrdistill.report.significance`);
* the paired differences that the tables compare (ensemble vs baseline, distilled vs baseline, distilled vs
  ensemble, baseline DNN vs GMM, soft-3% vs hard-3%, and each against the members' mean), each with its 95%
  interval and whether it excludes zero;
* the share of the ensemble's frame-accuracy gain that the distilled model keeps, against the members' mean
  (the main figure) and against member 0;
* every model's per-epoch learning rate and dev accuracy, the teacher cache's distance from the exact teacher,
  the per-stage wall times, the sizes, LM, graph and alignment-boundary figures.

Choices are made on dev only (the temperature of the distilled model, the acoustic scale and word insertion
penalty); test is reported. ``RESULTS.md`` marks a difference whose interval excludes zero with ``*``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asrdistill.errors import UserFacingError
from asrdistill.utils import get_logger, write_json_atomic, write_text_atomic

log = get_logger(__name__)

SPLITS = ("dev", "test")
REPLICATIONS = 1000


def _json(path: Path | None) -> Any:
    return json.loads(path.read_text()) if path is not None and path.is_file() else None


def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f}"


@dataclass
class _Context:
    manifest: Any
    layout: Any
    sets: dict          # split -> FrameDataset
    utt2spk: dict       # split -> {utt: speaker}
    device: Any


# --- measuring ----------------------------------------------------------------------------------------

def _frame_counts(ctx: _Context, scorer) -> dict[str, dict[str, tuple[int, int]]]:
    from asrdistill.nnet.evaluate import frame_scores_per_utt

    return {s: frame_scores_per_utt(scorer, ctx.sets[s]) for s in SPLITS}


def _summarise_frames(ctx: _Context, counts: dict[str, dict]) -> dict:
    from asrdistill.report.significance import bootstrap_rate, per_speaker_percent

    out = {}
    for s in SPLITS:
        b = bootstrap_rate(counts[s], ctx.utt2spk[s], REPLICATIONS)
        out[s] = {"frame_acc": b["rate"], "ci95": b["ci95"],
                  "per_speaker": per_speaker_percent(counts[s], ctx.utt2spk[s])}
    return out


def _wer(ctx: _Context, name: str) -> dict[str, dict | None]:
    """WER of a system's registered decodes (with speaker-level interval), or None where not decoded."""
    from asrdistill.report.significance import per_speaker_percent, read_utt_errors, wer_interval

    out: dict[str, dict | None] = {}
    for s in SPLITS:
        d = ctx.manifest.decode_dir(name, s) if ctx.manifest.has(name) else None
        info = _json(d / "decode.json") if d else None
        if not info or "wer" not in info:
            out[s] = None
            continue
        errors = read_utt_errors(d)
        ci = wer_interval(errors, ctx.utt2spk[s], REPLICATIONS)
        timing = _json(d / "timing.json") or {}
        out[s] = {"wer": info["wer"]["wer"], "line": info["wer"]["line"], "ci95": ci["ci95"],
                  "speakers": ci["speakers"], "utterances": ci["utterances"],
                  "acoustic_scale": info.get("acoustic_scale"), "word_ins_penalty": info.get("word_ins_penalty", 0.0),
                  "grid": info.get("grid"), "per_speaker": per_speaker_percent(errors, ctx.utt2spk[s]),
                  "rtf": timing.get("rtf", info.get("stats", {}).get("rtf")), "dir": str(d), "_errors": errors}
    return out


def _history(model_dir: Path) -> list[dict]:
    return _epoch_records(_json(model_dir / "history.json"))


def _epoch_records(info: Any) -> list[dict]:
    """The per-epoch figures of a loaded ``history.json`` (or of its older form, a bare list)."""
    hist = info.get("history", []) if isinstance(info, dict) else (info or [])
    return [{k: h.get(k) for k in ("epoch", "lr", "dev_acc", "dev_ce", "train_acc", "accepted")} for h in hist]


def _compare(ctx: _Context, a: str, b: str, metric: str, split: str, counts_a: dict, counts_b: dict) -> dict:
    from asrdistill.report.significance import (compare_frame_acc, compare_wer, speaker_spread,
                                                speakers_to_exclude_zero)

    fn = compare_frame_acc if metric == "frame_acc" else compare_wer
    r = fn(counts_a, counts_b, ctx.utt2spk[split], REPLICATIONS)
    out = {"a": a, "b": b, "metric": metric, "split": split, "value_a": r["a"], "value_b": r["b"],
           "diff": r["diff"], "ci95": r["ci95"], "excludes_zero": r["excludes_zero"], "speakers": r["speakers"],
           "utterances": r["utterances"],
           "speakers_to_exclude_zero": speakers_to_exclude_zero(r["diff"], r["ci95"], r["speakers"])}
    if out["speakers_to_exclude_zero"] is not None and r["speakers"] > 1:
        # more speakers, or would more utterances per speaker do as well? (points squared)
        spread = speaker_spread(counts_a, counts_b, ctx.utt2spk[split])
        out["speaker_spread"] = {k: v * 1e4 if k != "speakers" else v for k, v in spread.items()}
    return out


def _mean_counts(member_counts: list[dict]) -> dict:
    """Per utterance, the members' mean correct frames: the 'mean of the members' as one (fractional) system."""
    return {u: (sum(c[u][0] for c in member_counts) / len(member_counts), member_counts[0][u][1])
            for u in member_counts[0]}


# --- the whole report -----------------------------------------------------------------------------------

def make_results(exp: str | os.PathLike, out: str | os.PathLike, command: str = "", device: str = "auto") -> dict:
    """Measure and write ``out/RESULTS.md``, ``out/results.json`` and ``out/curves_*.png`` from the systems
    manifest of ``exp`` (see :mod:`asrdistill.experiment.manifest`)."""
    from asrdistill.experiment.layout import ExpLayout
    from asrdistill.experiment.manifest import Manifest
    from asrdistill.nnet.data import load_frame_dataset, read_num_pdfs
    from asrdistill.nnet.device import resolve_device
    from asrdistill.nnet.ensemble import Ensemble
    from asrdistill.nnet.evaluate import ensemble_scores_per_utt
    from asrdistill.nnet.model import load_model
    from asrdistill.report.significance import read_utt2spk

    exp, out = Path(exp), Path(out)
    manifest = Manifest(exp)
    stale = manifest.stale()
    if stale:
        raise UserFacingError(f"{manifest.path}: results would mix old and new work; rerun the stages of: "
                              + "; ".join(f"{n} ({', '.join(w)})" for n, w in stale.items()))
    paths = manifest.get("sets")
    layout = ExpLayout.of(Path(paths["train"]["data"]).parent, exp)
    dev = resolve_device(device)
    num_pdfs = read_num_pdfs(paths["train"]["ali"])
    ctx = _Context(manifest, layout,
                   {s: load_frame_dataset(paths[s]["feats"], paths[s]["ali"], num_pdfs).to(dev) for s in SPLITS},
                   {s: read_utt2spk(paths[s]["data"]) for s in SPLITS}, dev)

    res: dict[str, Any] = {"command": command, "num_pdfs": num_pdfs, "replications": REPLICATIONS,
                           "bootstrap": "speaker-level (speakers, then utterances within each), paired",
                           "corpus": _json(layout.corpus_summary), "sizes": _json(exp / "sizes.json"),
                           "stage_seconds": manifest.data.get("stage_seconds", {}),
                           "alignment_boundaries": _json(layout.boundaries), "lm": _json(layout.lm / "lm.json"),
                           "graph": _json(layout.graph / "graph.json")}
    if layout.boundaries.with_suffix(".md").is_file():
        res["alignment_boundaries_md"] = layout.boundaries.with_suffix(".md").read_text()

    # Frame accuracy of every network, per utterance (kept for the paired comparisons).
    members = sorted((n for n in manifest.names("dnn") if n.startswith("member")), key=lambda n: int(n[6:]))
    member_models = [load_model(manifest.model_path(m), dev) for m in members]
    # One forward pass of each member serves the member alone and both combinations.
    per_split = {s: ensemble_scores_per_utt(Ensemble(member_models), ctx.sets[s]) for s in SPLITS}
    counts: dict[str, dict] = {m: {s: per_split[s][i] for s in SPLITS} for i, m in enumerate(members)}
    counts["members_mean"] = {s: _mean_counts([counts[m][s] for m in members]) for s in SPLITS}
    counts["ensemble"] = {s: per_split[s]["arithmetic"] for s in SPLITS}
    counts["ensemble_geometric"] = {s: per_split[s]["geometric"] for s in SPLITS}
    others = [n for n in manifest.names("student") + manifest.names("dnn") if n not in members]
    for name in others:
        counts[name] = _frame_counts(ctx, load_model(manifest.model_path(name), dev))
    chosen = manifest.system("distilled") if manifest.has("distilled") else None
    aliases = {"baseline": members[0] if members else None, "distilled": chosen["resolved"] if chosen else None,
               "soft_subset": manifest.system("soft_subset")["resolved"] if manifest.has("soft_subset") else None}

    systems: dict[str, dict] = {}
    for name, c in counts.items():
        systems[name] = {"frames": _summarise_frames(ctx, c)}
        if manifest.has(name):
            trained = _json(manifest.model_path(name).parent / "history.json")
            systems[name]["history"] = _epoch_records(trained)
            systems[name]["options"] = manifest.get(name, "options")
            if isinstance(trained, dict) and trained.get("training_dtype"):
                systems[name]["training_dtype"] = trained["training_dtype"]
    for name in ["gmm_tri"] + list(counts) + ["baseline", "distilled", "soft_subset"]:
        if manifest.has(name):
            w = _wer(ctx, name)
            if any(w.values()):
                systems.setdefault(aliases.get(name) or name, {})["wer"] = w
    res["systems"] = {n: {k: v for k, v in e.items()} for n, e in systems.items()}

    def frame(name: str, split: str) -> float | None:
        n = aliases.get(name) or name
        return systems.get(n, {}).get("frames", {}).get(split, {}).get("frame_acc")

    def wer(name: str, split: str) -> dict | None:
        n = aliases.get(name) or name
        return (systems.get(n, {}).get("wer") or {}).get(split)

    # The comparisons the tables make (paired, speaker-level).
    comps = []
    pairs = [("ensemble", "baseline"), ("distilled", "baseline"), ("distilled", "ensemble"),
             ("ensemble", "members_mean"), ("distilled", "members_mean"), ("soft_subset", "hard_subset")]
    for a, b in pairs:
        na, nb = aliases.get(a) or a, aliases.get(b) or b
        if na in counts and nb in counts:
            for s in SPLITS:
                comps.append(_compare(ctx, a, b, "frame_acc", s, counts[na][s], counts[nb][s]))
    for a, b in [("ensemble", "baseline"), ("distilled", "baseline"), ("distilled", "ensemble"),
                 ("baseline", "gmm_tri"), ("soft_subset", "hard_subset")]:
        for s in SPLITS:
            wa, wb = wer(a, s), wer(b, s)
            if wa and wb:
                comps.append(_compare(ctx, a, b, "wer", s, wa["_errors"], wb["_errors"]))
    res["comparisons"] = comps

    # Share of the ensemble's gain kept by the distilled model.
    if chosen:
        from asrdistill.report.significance import share_kept

        res["gain_kept"], res["gain_kept_ci95"] = {}, {}
        for ref in ("members_mean", "baseline"):
            res["gain_kept"][ref], res["gain_kept_ci95"][ref] = {}, {}
            for s in SPLITS:
                k = share_kept(counts[aliases["distilled"]][s], counts[aliases.get(ref) or ref][s],
                               counts["ensemble"][s], ctx.utt2spk[s], REPLICATIONS)
                no_gain = abs(k["gain"]) < 1e-9
                res["gain_kept"][ref][s] = None if no_gain else k["share"]
                if not no_gain:
                    res["gain_kept_ci95"][ref][s] = k["ci95"]

    # Distillation: every student, the chosen one, the cache's distance from the exact teacher.
    students = [n for n in manifest.names("student") if n.startswith("student_T")]
    res["distillation"] = {
        "students": {n: {s: frame(n, s) for s in SPLITS} for n in students},
        "chosen_on_dev": aliases["distilled"], "chosen": chosen.get("chosen") if chosen else None,
        "temperature": manifest.get("distilled", "options.temperature") if chosen else None,
        "cache_check": _json(Path(manifest.system("teacher_cache")["dir"]) / "check.json")
        if manifest.has("teacher_cache") else None}
    soft_students = [n for n in manifest.names("student") if n.startswith("soft_subset_T")]
    if soft_students:
        res["table5_soft_students"] = {
            "students": {n: {s: frame(n, s) for s in SPLITS} for n in soft_students},
            "chosen_on_dev": aliases["soft_subset"],
            "temperature": manifest.get("soft_subset", "options.temperature") if manifest.has("soft_subset")
            else None}

    # Table 1 and Table 5 rows.
    n = len(members)
    rows = [("GMM-HMM triphone", "gmm_tri"), ("Baseline DNN (member 0)", "baseline"),
            (f"Mean of the {n} members", "members_mean"), (f"{n} x ensemble (arithmetic mean)", "ensemble"),
            (f"{n} x ensemble (geometric mean)", "ensemble_geometric")]
    if chosen:
        rows.append((f"Distilled single model (T={res['distillation']['temperature']:g}, chosen on dev)",
                     "distilled"))
    res["table1"] = [{"system": label, "name": name,
                      **{f"{s}_frame_acc": frame(name, s) for s in SPLITS},
                      **{f"{s}_wer": _public(wer(name, s)) for s in SPLITS}} for label, name in rows]
    train_full = load_frame_dataset(paths["train"]["feats"], paths["train"]["ali"], num_pdfs)
    table5 = []
    soft_t = (res.get("table5_soft_students") or {}).get("temperature")
    soft_label = "Soft targets from the full-data ensemble, subset" + (
        f" (T={soft_t:g}, chosen on dev)" if soft_t is not None else "")
    for label, name in [("Baseline, 100% of the training data (member 0)", "baseline"),
                        ("Hard targets, subset", "hard_subset"), (soft_label, "soft_subset")]:
        real = aliases.get(name) or name
        if not real or not manifest.has(real):
            continue
        d = manifest.model_path(real).parent
        info = _json(d / "train_data.json") or {"subset": 1.0, "subset_seed": 0}
        train = train_full if info["subset"] >= 1.0 else train_full.subset(info["subset"], info["subset_seed"])
        from asrdistill.nnet.evaluate import evaluate_frames

        model = load_model(manifest.model_path(real), dev)
        hist = _history(d)
        table5.append({"system": label, "name": name, "subset": info["subset"],
                       "train_frames": int(len(train.targets)), "epochs": max((h["epoch"] for h in hist), default=None),
                       "train_frame_acc": evaluate_frames(model, train.to(dev))["frame_acc"],
                       **{f"{s}_frame_acc": frame(name, s) for s in SPLITS},
                       **{f"{s}_wer": _public(wer(name, s)) for s in SPLITS}})
    res["table5"] = table5
    if len(table5) == 3 and table5[0]["dev_frame_acc"]:
        res["soft_subset_share_of_baseline"] = {s: table5[2][f"{s}_frame_acc"] / table5[0][f"{s}_frame_acc"]
                                                for s in SPLITS}

    # Learning curves.
    out.mkdir(parents=True, exist_ok=True)
    _plot_curves({m: systems[m]["history"] for m in members}, out / "curves_ensemble.png",
                 "Ensemble members: dev frame accuracy")
    _plot_curves({m: systems[m]["history"] for m in students}, out / "curves_distill.png",
                 "Distilled students: dev frame accuracy")
    _plot_curves({m: systems[m]["history"] for m in ("hard_subset", aliases["soft_subset"] or "soft_subset")
                  if m in systems},
                 out / "curves_subset.png", "Table 5 pair: train (running) and dev frame accuracy",
                 keys=("train_acc", "dev_acc"))
    for e in res["systems"].values():  # per-utterance errors stay out of results.json
        for w in (e.get("wer") or {}).values():
            if w:
                w.pop("_errors", None)
    write_json_atomic(out / "results.json", res)
    write_text_atomic(out / "RESULTS.md", format_results(res))
    return res


def _public(w: dict | None) -> dict | None:
    return None if w is None else {k: v for k, v in w.items() if not k.startswith("_") and k != "per_speaker"}


def _plot_curves(curves: dict[str, list[dict]], path: Path, title: str, keys=("dev_acc",)) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, hist in curves.items():
        for key in keys:
            pts = [(h["epoch"], h[key]) for h in hist if h.get(key) is not None and h["epoch"] > 0]
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


# --- RESULTS.md ---------------------------------------------------------------------------------------

def _fmt_wer(w: dict | None) -> str:
    if not w:
        return "-"
    return f"{w['wer']:.2f} [{w['ci95'][0]:.1f}, {w['ci95'][1]:.1f}]"


def _fmt_diff(c: dict | None) -> str:
    if not c:
        return "-"
    star = " *" if c["excludes_zero"] else ""
    return f"{c['diff']:+.2f} [{c['ci95'][0]:+.2f}, {c['ci95'][1]:+.2f}]{star}"


def _find(res: dict, a: str, b: str, metric: str, split: str) -> dict | None:
    for c in res.get("comparisons", []):
        if (c["a"], c["b"], c["metric"], c["split"]) == (a, b, metric, split):
            return c
    return None


def _dtype_note(systems: dict) -> str:
    """The sentence naming the dtype(s) the DNNs were trained in (from each system's ``history.json``)."""
    by_dtype: dict[str, list[str]] = {}
    for name, s in systems.items():
        if s.get("training_dtype"):
            by_dtype.setdefault(s["training_dtype"], []).append(name)
    if not by_dtype:
        return ""
    parts = [f"{d} ({', '.join(names)})" if len(by_dtype) > 1 else d for d, names in sorted(by_dtype.items())]
    return f" DNN training passes in {' and '.join(parts)} (`--precision`; weights and optimiser state in float32)."


def format_results(res: dict) -> str:
    lines = ["# Results", "", "Made by:", "", "```", res.get("command") or "(unknown command)", "```", ""]
    c = res.get("corpus")
    if c:
        lines += ["## Corpus", "", "| split | hours | speakers | utterances | frames |", "|---|---|---|---|---|"]
        order = ["train", "dev", "test"]
        for s, r in sorted(c["splits"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9):
            lines.append(f"| {s} | {r['hours']:.2f} | {r['speakers']} | {r['utterances']} | {r.get('frames', '-')} |")
        lines += ["", f"Vocabulary {c.get('vocabulary')} words, {c.get('nonsilence_phones')} phones + silence; "
                      f"SNR {c.get('snr_db')} dB, RT60 {c.get('rt60')} s; {res['num_pdfs']} tied triphone states.",
                  ""]
    sz = res.get("sizes") or {}
    if sz.get("sizes"):
        by = sz.get("chosen_by", {})
        lines += ["## Sizes", "", f"Training data: {sz.get('data', {}).get('hours', float('nan')):.2f} h, "
                  f"{sz.get('data', {}).get('speakers')} speakers. Chosen by the rule of `asrdistill.sizes` from the "
                  "training hours (rule) or given as options (user); the reasons are in results.json.", "",
                  "| " + " | ".join(sz["sizes"]) + " |", "|" + "---|" * len(sz["sizes"]),
                  "| " + " | ".join(f"{v} ({by.get(k, '?')})" for k, v in sz["sizes"].items()) + " |", ""]
    lines += ["## Table 1: frame accuracy and WER (cf. Hinton et al. 2015, Table 1)", "",
              "Intervals: 95%, from a bootstrap over speakers and utterances within them "
              f"({res.get('replications')} replications). Dev WER is at the acoustic scale and word insertion "
              "penalty chosen on all of dev (so it is optimistic); test WER at that setting."
              + _dtype_note(res.get("systems", {})), "",
              "| system | dev frame acc % | test frame acc % | dev WER % | test WER % [95% CI] |",
              "|---|---|---|---|---|"]
    for r in res["table1"]:
        lines.append(f"| {r['system']} | {_pct(r['dev_frame_acc'])} | {_pct(r['test_frame_acc'])} | "
                     f"{_fmt_wer(r['dev_wer']).split(' [')[0]} | {_fmt_wer(r['test_wer'])} |")
    if res.get("gain_kept"):
        g, ci = res["gain_kept"], res.get("gain_kept_ci95", {})

        def kept(ref: str, s: str) -> str:
            lo_hi = ci.get(ref, {}).get(s)
            return f"{_pct(g[ref][s])}%" + (f" [{_pct(lo_hi[0])}, {_pct(lo_hi[1])}]" if lo_hi else "")

        lines += ["", "Share of the ensemble's frame-accuracy gain kept by the distilled model (paper: 86%; 95% "
                      "interval from the same speaker-level bootstrap): over the members' mean dev "
                      f"{kept('members_mean', 'dev')}, test {kept('members_mean', 'test')}; over member 0 dev "
                      f"{kept('baseline', 'dev')}, test {kept('baseline', 'test')}."]
    lines += ["", "### Differences (paired; `*`: the 95% interval excludes zero)", "",
              "| comparison | dev frame acc (points) | test frame acc (points) | dev WER (points) | test WER (points) |",
              "|---|---|---|---|---|"]
    unsure: list[str] = []
    for a, b, label in [("ensemble", "baseline", "ensemble - baseline"),
                        ("ensemble", "members_mean", "ensemble - members' mean"),
                        ("distilled", "baseline", "distilled - baseline"),
                        ("distilled", "members_mean", "distilled - members' mean"),
                        ("distilled", "ensemble", "distilled - ensemble"),
                        ("baseline", "gmm_tri", "baseline DNN - GMM"),
                        ("soft_subset", "hard_subset", "soft 3% - hard 3%")]:
        found = [(m, s, _find(res, a, b, m, s)) for m in ("frame_acc", "wer") for s in SPLITS]
        if not any(c for _, _, c in found):
            continue
        lines.append(f"| {label} | " + " | ".join(_fmt_diff(c) for _, _, c in found) + " |")
        for m, s, c in found:
            if c and c.get("speakers_to_exclude_zero"):
                sp = c.get("speaker_spread")
                split_of = (f"; per-speaker variance {sp['per_speaker_variance']:.1f}, sampling "
                            f"{sp['sampling_variance']:.1f}" if sp else "")
                unsure.append(f"{label}, {s} {'WER' if m == 'wer' else 'frame acc'} {c['diff']:+.2f}: "
                              f"~{c['speakers_to_exclude_zero']} (now {c['speakers']}{split_of})")
    if unsure:
        lines += ["", "Differences whose interval holds zero, and about how many speakers like these (with as many "
                      "utterances each) would make it exclude zero if the difference stayed as measured (the "
                      "interval narrows as 1/sqrt(speakers); at that size a real difference of this size shows "
                      "about half the time, at twice it 80% of the time). Beside each, the variance of the "
                      "speakers' own differences and the part of it that sampling their utterances explains "
                      "(points squared; where sampling explains it all, more utterances per speaker would serve "
                      "as well as more speakers): " + "; ".join(unsure) + "."]
    d = res.get("distillation", {})
    if d.get("students"):
        lines += ["", "### Distilled students (all temperatures; the one chosen on dev is decoded)", "",
                  "| student | dev frame acc % | test frame acc % |", "|---|---|---|"]
        for name, a in d["students"].items():
            mark = " (chosen)" if name == d.get("chosen_on_dev") else ""
            lines.append(f"| {name}{mark} | {_pct(a['dev'])} | {_pct(a['test'])} |")
        chk = d.get("cache_check")
        if chk:
            lines += ["", f"Teacher cache ({chk.get('encoding')}, one pass of the ensemble) vs the exact teacher on "
                          f"{chk.get('frames')} sampled training frames, per temperature (arithmetic combination):",
                      "", "| T | mean KL (nats) | max KL | mean TV | max TV |", "|---|---|---|---|---|"]
            for t, v in sorted(chk.get("temperature", {}).items(), key=lambda kv: float(kv[0])):
                e = v.get("arithmetic") or next(iter(v.values()))
                lines.append(f"| {t} | {e['kl_mean']:.2e} | {e['kl_max']:.2e} | {e['tv_mean']:.2e} | "
                             f"{e['tv_max']:.2e} |")
    if res.get("table5"):
        lines += ["", "## Table 5: soft targets as a regularizer (cf. Table 5)", "",
                  "| system | train frames | epochs | train frame acc % | dev frame acc % | test frame acc % | "
                  "test WER % [95% CI] |", "|---|---|---|---|---|---|---|"]
        for r in res["table5"]:
            lines.append(f"| {r['system']} | {r['train_frames']} | {r['epochs']} | {_pct(r['train_frame_acc'])} | "
                         f"{_pct(r['dev_frame_acc'])} | {_pct(r['test_frame_acc'])} | {_fmt_wer(r['test_wer'])} |")
        share = res.get("soft_subset_share_of_baseline")
        if share:
            lines += ["", f"Soft targets on the subset reach {_pct(share['dev'])}% (dev) and {_pct(share['test'])}% "
                          "(test) of the full-data baseline's frame accuracy (paper: 97%)."]
        soft = res.get("table5_soft_students")
        if soft:
            lines += ["", "Soft-target models on the subset, every temperature (the one chosen on dev is in the table "
                          "above):", "", "| model | dev frame acc % | test frame acc % |", "|---|---|---|"]
            for name, a in soft["students"].items():
                mark = " (chosen)" if name == soft.get("chosen_on_dev") else ""
                lines.append(f"| {name}{mark} | {_pct(a['dev'])} | {_pct(a['test'])} |")
    per_spk = [(n, e["wer"]["test"]["per_speaker"]) for n, e in res.get("systems", {}).items()
               if e.get("wer") and e["wer"].get("test")]
    if per_spk:
        spks = sorted({s for _, p in per_spk for s in p})
        lines += ["", "### Test WER per speaker", "", "| speaker | " + " | ".join(n for n, _ in per_spk) + " |",
                  "|---|" + "---|" * len(per_spk)]
        for s in spks:  # a row per speaker: a test set may have dozens
            lines.append(f"| {s} | " + " | ".join("-" if p.get(s) is None else f"{p[s]:.1f}" for _, p in per_spk)
                         + " |")
    if res.get("alignment_boundaries_md"):
        lines += ["", "## Alignment quality: phone boundaries vs the synthesizer's ground truth", "",
                  res["alignment_boundaries_md"].strip()]
    lm, graph = res.get("lm") or {}, res.get("graph") or {}
    if lm or graph:
        lines += ["", "## LM and graph", ""]
        if lm:
            devp = lm.get("dev_perplexity") or {}
            lines.append(f"- LM: {lm.get('order')}-gram {lm.get('source', '')}, n-grams {lm.get('ngrams')}, "
                         f"dev perplexity {devp.get('perplexity', float('nan')):.1f}")
        if graph:
            lines.append(f"- HCLG: {graph.get('states')} states, {graph.get('arcs')} arcs, "
                         f"{graph.get('bytes', 0) / 1e6:.1f} MB")
    times = res.get("stage_seconds") or {}
    if times:
        lines += ["", "## Wall time per stage", "", "Seconds of each stage's longest run (a rerun that skips finished work "
                  "is shorter; every run is in `exp/systems.json`).", "", "| stage | " + " | ".join(sorted(times, key=int)) + " | total |",
                  "|---|" + "---|" * (len(times) + 1),
                  "| seconds | " + " | ".join(f"{times[k]:.0f}" for k in sorted(times, key=int))
                  + f" | {sum(times.values()):.0f} |"]
    lines += ["", "Learning curves: `curves_ensemble.png`, `curves_distill.png`, `curves_subset.png`; every "
                  "model's per-epoch learning rate and dev accuracy, per-speaker figures and all intervals are in "
                  "`results.json`.", ""]
    return "\n".join(lines)
