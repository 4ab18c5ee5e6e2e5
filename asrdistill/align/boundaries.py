"""Phone-boundary accuracy of alignments against ground-truth phone timings (``phones.ctm``).

Reference: ``<utt> 1 <start> <dur> <PHONE>`` per phone (seconds), written by the synthesizer into the data dir.
Hypothesis: the alignment's phone segments; a frame-level alignment puts the boundary before frame t at
``t * frame_shift + frame_offset`` seconds. Frame t's analysis window (25 ms, Kaldi snip-edges) is centred at
``t * 0.010 + 0.0125`` s, so the boundary between frames t-1 and t, midway between their centres, lies at
``t * 0.010 + 0.0075`` s: ``frame_offset`` defaults to 7.5 ms (0 gives Kaldi's ``ali-to-phones --ctm-output``
convention, which reads boundaries ~7.5 ms early).

Matching, per utterance present in both:
  1. silence phones (SIL, SPN by default) are removed from both sequences: pauses are optional in the
     aligner's graph, so only boundaries of speech phones are scored;
  2. the two non-silence phone sequences are aligned by edit distance (kaldialign); only pairs with the
     same phone are "matched";
  3. every matched phone contributes its start boundary, and also its end boundary when in the reference
     that end is not the start of the next phone (i.e. the phone is followed by silence or ends the
     utterance) -- so each reference boundary instant is scored once;
  4. error = |hyp time - ref time|; reported: % within 10, 20, 40 ms (over scored boundaries), mean and
     median error, and how many reference phones were matched.

No silent subsets: reference utterances without an alignment (failed ones) are named in a warning, listed in
the result (``unaligned_utts``) and their phones count in ``num_ref_phones`` as unmatched; aligned utterances
without a reference are named and listed (``unreferenced_utts``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from asrdistill.errors import UserFacingError

Segment = tuple[float, float, str]   # (start s, end s, phone)
DEFAULT_TOLERANCES_MS = (10, 20, 40)
FRAME_SHIFT = 0.010
FRAME_OFFSET = 0.0075  # (window 25 ms - shift 10 ms) / 2


def read_ctm(path: str | os.PathLike) -> dict[str, list[Segment]]:
    """Read a phone CTM; segments of each utterance sorted by start time."""
    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"{path}: ground-truth phone CTM not found")
    from asrdistill.textio import read_lines

    out: dict[str, list[Segment]] = {}
    for lineno, line in enumerate(read_lines(path), 1):
        f = line.split()
        if not f:
            continue
        if len(f) < 5:
            raise UserFacingError(f"{path}:{lineno}: expected '<utt> <channel> <start> <dur> <phone>'")
        try:
            start, dur = float(f[2]), float(f[3])
        except ValueError:
            raise UserFacingError(f"{path}:{lineno}: start/duration are not numbers") from None
        if not (np.isfinite(start) and np.isfinite(dur)) or start < 0 or dur < 0:
            raise UserFacingError(f"{path}:{lineno} (utterance {f[0]}): start and duration must be finite and "
                                  "non-negative")
        out.setdefault(f[0], []).append((start, start + dur, f[4]))
    for segs in out.values():
        segs.sort()
    return out


def phone_segments(tids: np.ndarray, is_start: np.ndarray, tid2phone: np.ndarray) -> list[tuple[int, int, int]]:
    """Split a transition-id alignment into (phone, start, end) frames. Training graphs are compiled with
    reorder=True (Kaldi's default): each HMM state's first frame carries the state's forward transition and
    its later frames the self-loop, so a phone starts exactly at a frame whose transition-id leaves HMM
    state 0 by a non-self-loop transition (``is_start``, see :meth:`GmmHmm.tid_info`)."""
    tids = np.asarray(tids)
    if len(tids) == 0:
        return []
    starts = np.flatnonzero(is_start[tids])
    if len(starts) == 0 or starts[0] != 0:
        starts = np.r_[0, starts]
    ends = np.r_[starts[1:], len(tids)]
    return [(int(tid2phone[tids[s]]), int(s), int(e)) for s, e in zip(starts, ends)]


def alignments_to_segments(alignments: Mapping[str, np.ndarray], model, frame_shift: float = FRAME_SHIFT,
                           frame_offset: float = FRAME_OFFSET) -> dict[str, list[Segment]]:
    """Phone segments in seconds of transition-id alignments made with ``model`` (a GmmHmm); the first
    segment starts at 0 and the last ends at the end of the last frame's window."""
    info = model.tid_info()
    out = {}
    for utt, tids in alignments.items():
        segs = phone_segments(tids, info["is_start"], info["phone"])
        n = len(tids)

        def at(t: int) -> float:
            return 0.0 if t == 0 else (n * frame_shift + 2 * frame_offset if t == n else t * frame_shift + frame_offset)
        out[utt] = [(at(s), at(e), model.phones[p]) for p, s, e in segs]
    return out


def write_ctm(path: str | os.PathLike, segments: Mapping[str, list[Segment]]) -> None:
    from asrdistill.utils import write_text_atomic
    lines = [f"{u} 1 {s:.3f} {e - s:.3f} {p}\n" for u in sorted(segments, key=str.encode)
             for s, e, p in segments[u]]
    write_text_atomic(path, "".join(lines))


def score_boundaries(ref: Mapping[str, list[Segment]], hyp: Mapping[str, list[Segment]],
                     silence: Iterable[str] = ("SIL", "SPN"),
                     tolerances_ms: Sequence[int] = DEFAULT_TOLERANCES_MS) -> dict:
    """Boundary accuracy of ``hyp`` against ``ref`` (see module doc); returns a JSON-able dict."""
    import kaldialign
    silence = set(silence)
    errors: list[float] = []
    n_ref_phones = n_matched = n_utts = 0
    no_hyp = sorted((u for u in ref if u not in hyp), key=str.encode)   # e.g. failed alignments
    no_ref = sorted((u for u in hyp if u not in ref), key=str.encode)
    if no_hyp or no_ref:
        from asrdistill.align.alidir import name_some
        from asrdistill.utils import get_logger

        log = get_logger(__name__)
        if no_hyp:
            log.warning("boundaries: %d reference utterances have no alignment; their phones count as unmatched: %s",
                        len(no_hyp), name_some(no_hyp))
        if no_ref:
            log.warning("boundaries: %d aligned utterances have no reference phones; not scored: %s", len(no_ref),
                        name_some(no_ref))
    for utt in no_hyp:  # unaligned: every reference phone is a miss, as a deletion is in a WER
        n_ref_phones += sum(1 for s in ref[utt] if s[2] not in silence)
    for utt, hsegs in hyp.items():
        rsegs = ref.get(utt)
        if rsegs is None:
            continue
        n_utts += 1
        r = [s for s in rsegs if s[2] not in silence]
        h = [s for s in hsegs if s[2] not in silence]
        n_ref_phones += len(r)
        pairs = kaldialign.align([s[2] for s in r], [s[2] for s in h], "<eps>")
        i = j = 0
        for a, b in pairs:
            if a != "<eps>" and b != "<eps>":
                if a == b:
                    n_matched += 1
                    errors.append(abs(h[j][0] - r[i][0]))
                    next_start = r[i + 1][0] if i + 1 < len(r) else None
                    if next_start is None or abs(next_start - r[i][1]) > 1e-6:
                        errors.append(abs(h[j][1] - r[i][1]))
                i += 1
                j += 1
            elif a != "<eps>":
                i += 1
            else:
                j += 1
    err = np.asarray(errors)
    result = {"num_utts": n_utts, "num_ref_phones": n_ref_phones, "num_matched_phones": n_matched,
              "num_unaligned_utts": len(no_hyp), "unaligned_utts": no_hyp,
              "num_unreferenced_utts": len(no_ref), "unreferenced_utts": no_ref,
              "matched_fraction": n_matched / n_ref_phones if n_ref_phones else 0.0,
              "num_boundaries": int(len(err)),
              "mean_abs_error_ms": float(err.mean() * 1000) if len(err) else None,
              "median_abs_error_ms": float(np.median(err) * 1000) if len(err) else None}
    for tol in tolerances_ms:
        # small epsilon: times are printed with 2-3 decimals
        result[f"within_{tol}ms"] = float(np.mean(err <= tol / 1000 + 1e-6) * 100) if len(err) else 0.0
    return result


def boundary_table(results: Mapping[str, dict], tolerances_ms: Sequence[int] = DEFAULT_TOLERANCES_MS) -> str:
    """Markdown table of several results, keyed by a label such as ``mono/dev``."""
    head = "| system | utts | boundaries | " + " | ".join(f"<= {t} ms" for t in tolerances_ms) + \
        " | mean err ms | matched phones |\n"
    head += "|---" * (5 + len(tolerances_ms)) + "|\n"
    rows = []
    for label, r in results.items():
        mean = f"{r['mean_abs_error_ms']:.1f}" if r.get("mean_abs_error_ms") is not None else "-"
        rows.append(f"| {label} | {r['num_utts']} | {r['num_boundaries']} | "
                    + " | ".join(f"{r[f'within_{t}ms']:.1f}%" for t in tolerances_ms)
                    + f" | {mean} | {100 * r['matched_fraction']:.1f}% |\n")
    return head + "".join(rows)


def equal_alignment_segments(ref: Mapping[str, list[Segment]], num_frames: Mapping[str, int],
                             frame_shift: float = 0.01, silence: Iterable[str] = ("SIL", "SPN")
                             ) -> dict[str, list[Segment]]:
    """A baseline: the reference's non-silence phones spread evenly over the utterance (what a flat start
    assumes), for comparison with trained alignments."""
    silence = set(silence)
    out = {}
    for utt, segs in ref.items():
        if utt not in num_frames:
            continue
        phones = [p for _, _, p in segs if p not in silence]
        total = num_frames[utt] * frame_shift
        edges = np.linspace(0.0, total, len(phones) + 1)
        out[utt] = [(float(edges[k]), float(edges[k + 1]), p) for k, p in enumerate(phones)]
    return out


def score_alignment_dir(ali_dir: str | os.PathLike, ctm: str | os.PathLike | None = None,
                        write_hyp_ctm: bool = True, frame_offset: float = FRAME_OFFSET) -> dict:
    """Score an alignment dir (with ali.scp and final.mdl) against ``ctm`` (default: ``phones.ctm`` of the
    data dir recorded in the alignment dir's info.json); also writes the alignment's own phones.ctm there."""
    import json

    from asrdistill.hmm.model import GmmHmm
    from asrdistill.kaldi_tables import read_int_vector_table
    from asrdistill.textio import read_text
    ali_dir = Path(ali_dir)
    if not (ali_dir / "ali.scp").is_file() or not (ali_dir / "final.mdl").is_file():
        raise UserFacingError(f"{ali_dir}: needs ali.scp and final.mdl (an alignment dir made by `asrdistill align`)")
    if ctm is None:
        try:
            info = json.loads(read_text(ali_dir / "info.json"))
        except json.JSONDecodeError as err:
            raise UserFacingError(f"{ali_dir / 'info.json'}: corrupt ({err})") from None
        if not info.get("data_dir"):
            raise UserFacingError(f"{ali_dir}: info.json names no data dir; pass the ground-truth CTM explicitly")
        ctm = Path(info["data_dir"]) / "phones.ctm"
    model = GmmHmm.load(ali_dir / "final.mdl")
    alis = read_int_vector_table(ali_dir / "ali.scp", allow_pipes=False)  # written by the toolkit: never a command
    bad = next((u for u, a in alis.items() if a.size and (a.min() < 1 or a.max() > model.trans_model.num_transition_ids)),
               None)
    if bad is not None:
        raise UserFacingError(f"{ali_dir / 'ali.scp'} (utterance {bad}): transition-ids outside the model's "
                              f"[1, {model.trans_model.num_transition_ids}]")
    hyp = alignments_to_segments(alis, model, frame_offset=frame_offset)
    if write_hyp_ctm:
        write_ctm(ali_dir / "phones.ctm", hyp)
    return score_boundaries(read_ctm(ctm), hyp)
