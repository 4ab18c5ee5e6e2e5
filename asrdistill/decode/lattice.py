"""Raw lattices as numpy arrays, and exact best paths over a grid of (acoustic scale, word insertion penalty).

Kaldi scores a decode by rescoring its lattices (``local/score.sh``: ``lattice-scale --inv-acoustic-scale=LMWT |
lattice-add-penalty --word-ins-penalty=WIP | lattice-best-path``) rather than decoding again per setting. Here a
raw (undeterminised) lattice from ``kaldi_decoder.LatticeSimpleDecoder.get_raw_lattice()`` keeps, on every arc,
the graph cost and the acoustic cost apart (``LatticeWeight(graph, acoustic)``, the acoustic cost already times
the decoding scale ``s0``). The cost of a path at acoustic scale ``s`` and penalty ``p`` is

    graph + p * (words on the path) + (s / s0) * acoustic,

and :func:`best_paths` finds, for every point of the grid at once, the path of least cost by dynamic programming
over the lattice's states in topological order (numpy, float64, vectorised over the grid). The best path at
``(s0, 0)`` is the decoder's own best path; at other settings it is the best path *within the lattice*, as in
Kaldi's scoring: exact when the lattice beam holds the path that a decode at that setting would find.

The lattice is read through OpenFst's binary format (``Lattice.write``) because kaldifst gives no fast arc
access for lattices; :func:`lattice_arrays` checks the header and the size.
"""
from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from asrdistill.errors import UserFacingError

_MAGIC = 2125659606
_ARC = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("graph", "<f4"), ("acoustic", "<f4"), ("next", "<i4")])
_HAS_SYMBOLS = 0x1 | 0x2          # FstHeader flags: input / output symbol table follows the header


@dataclass
class LatticeArrays:
    """A lattice's arcs (``src``, ``dst``, ``ilabel``, ``olabel``, ``graph``, ``acoustic``) and per-state final
    costs (``final_graph``, ``final_acoustic``; inf where not final)."""

    start: int
    num_states: int
    src: np.ndarray
    dst: np.ndarray
    ilabel: np.ndarray
    olabel: np.ndarray
    graph: np.ndarray
    acoustic: np.ndarray
    final_graph: np.ndarray
    final_acoustic: np.ndarray

    @property
    def num_arcs(self) -> int:
        return len(self.src)


def _read_string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<i", buf, pos)
    return buf[pos + 4:pos + 4 + n].decode("ascii", "replace"), pos + 4 + n


def parse_lattice_bytes(buf: bytes, what: str = "lattice") -> LatticeArrays:
    """Arrays of a lattice in OpenFst's binary ``vector`` format with ``lattice4`` arcs."""
    (magic,) = struct.unpack_from("<i", buf, 0)
    if magic != _MAGIC:
        raise UserFacingError(f"{what}: not an OpenFst binary FST")
    fst_type, pos = _read_string(buf, 4)
    arc_type, pos = _read_string(buf, pos)
    if fst_type != "vector" or arc_type != "lattice4":
        raise UserFacingError(f"{what}: a {fst_type} FST of {arc_type} arcs, expected a vector lattice4 FST")
    _version, flags, _props, start, num_states, _num_arcs = struct.unpack_from("<iiQqqq", buf, pos)
    pos += struct.calcsize("<iiQqqq")
    if flags & _HAS_SYMBOLS:
        raise UserFacingError(f"{what}: lattices with symbol tables are not supported")
    finals = np.empty((num_states, 2), dtype=np.float32)
    counts = np.empty(num_states, dtype=np.int64)
    starts = np.empty(num_states, dtype=np.int64)
    unpack = struct.Struct("<ffq").unpack_from
    for s in range(num_states):  # states are variable-sized: one small step per state, arcs in bulk below
        fg, fa, n = unpack(buf, pos)
        finals[s] = (fg, fa)
        counts[s] = n
        starts[s] = pos + 16
        pos += 16 + 20 * n
    if pos != len(buf):
        raise UserFacingError(f"{what}: {len(buf)} bytes, the header and arcs account for {pos}")
    total = int(counts.sum())
    raw = np.frombuffer(buf, dtype=np.uint8)
    first = np.repeat(starts - 20 * (np.cumsum(counts) - counts), counts) + 20 * np.arange(total)
    arcs = raw[first[:, None] + np.arange(20)].reshape(-1).view(_ARC) if total else np.zeros(0, _ARC)
    src = np.repeat(np.arange(num_states, dtype=np.int64), counts)
    return LatticeArrays(int(start), int(num_states), src, arcs["next"].astype(np.int64),
                         arcs["ilabel"].copy(), arcs["olabel"].copy(), arcs["graph"].astype(np.float64),
                         arcs["acoustic"].astype(np.float64), finals[:, 0].astype(np.float64),
                         finals[:, 1].astype(np.float64))


_SCRATCH: Path | None = None


def lattice_arrays(lat) -> LatticeArrays:
    """Arrays of a ``kaldifst.Lattice`` (written to a per-process scratch file in memory where possible)."""
    global _SCRATCH
    if _SCRATCH is None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        fd, name = tempfile.mkstemp(prefix="asrdistill-lat-", suffix=".fst", dir=base)
        os.close(fd)
        _SCRATCH = Path(name)
        import atexit
        atexit.register(lambda p=_SCRATCH: p.unlink(missing_ok=True))
    if not lat.write(str(_SCRATCH)):
        raise UserFacingError(f"{_SCRATCH}: could not write the lattice")
    return parse_lattice_bytes(_SCRATCH.read_bytes(), str(_SCRATCH))


def topological_levels(num_states: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Level of each state: 0 for states without incoming arcs, else 1 + the largest level of a predecessor
    (so every arc goes from a lower to a higher level). Raises on a cycle."""
    level = np.zeros(num_states, dtype=np.int64)
    indeg = np.bincount(dst, minlength=num_states)
    order = np.argsort(src, kind="stable")
    first = np.searchsorted(src[order], np.arange(num_states + 1))
    frontier = np.flatnonzero(indeg == 0)
    seen, depth = 0, 0
    while frontier.size:
        level[frontier] = depth
        seen += frontier.size
        n = first[frontier + 1] - first[frontier]
        total = int(n.sum())
        if not total:
            break
        arcs = order[np.repeat(first[frontier] - (np.cumsum(n) - n), n) + np.arange(total)]
        targets = dst[arcs]
        np.subtract.at(indeg, targets, 1)
        targets = np.unique(targets)
        frontier = targets[indeg[targets] == 0]
        depth += 1
    if seen != num_states:
        raise UserFacingError(f"lattice has a cycle ({num_states - seen} states on or after it)")
    return level


@dataclass
class GridPath:
    words: list[int]
    graph_cost: float        # graph cost of the path, penalty excluded
    acoustic_cost: float     # acoustic cost of the path at the lattice's decoding scale
    num_words: int
    ok: bool                 # False: no complete path in the lattice


def best_paths(la: LatticeArrays, factors: Sequence[float], penalties: Sequence[float]) -> list[GridPath]:
    """The best path for each grid point ``(factors[i], penalties[i])`` of the cost
    ``graph + penalty * words + factor * acoustic`` (factor = new acoustic scale / decoding scale)."""
    f = np.asarray(factors, dtype=np.float64)
    p = np.asarray(penalties, dtype=np.float64)
    if f.shape != p.shape or f.ndim != 1:
        raise ValueError("factors and penalties must be 1-d sequences of the same length")
    G, n = len(f), la.num_states
    if n == 0 or la.start < 0:
        return [GridPath([], float("nan"), float("nan"), 0, False) for _ in range(G)]
    is_word = (la.olabel != 0).astype(np.float64)
    W = la.graph[:, None] + is_word[:, None] * p[None, :] + la.acoustic[:, None] * f[None, :]     # [A, G]
    level = topological_levels(n, la.src, la.dst)
    # arcs grouped by the level of their source, and by destination within a level (segment minima)
    order = np.lexsort((la.dst, level[la.src]))
    src, dst, W = la.src[order], la.dst[order], W[order]
    arc_level = level[src]
    bounds = np.searchsorted(arc_level, np.arange(int(level.max()) + 2))
    new_dst = np.ones(len(dst), dtype=bool)
    new_dst[1:] = (dst[1:] != dst[:-1]) | (arc_level[1:] != arc_level[:-1])
    cost = np.full((n, G), np.inf)
    cost[la.start] = 0.0
    for lv in range(len(bounds) - 1):   # arcs leaving level lv: their sources are final by now
        a, b = bounds[lv], bounds[lv + 1]
        if a == b:
            continue
        heads = a + np.flatnonzero(new_dst[a:b])
        targets = dst[heads]
        cost[targets] = np.minimum(cost[targets], np.minimum.reduceat(cost[src[a:b]] + W[a:b], heads - a, axis=0))
    # back-pointers: an arc that attains its destination's cost (the same float64 sum as above: exact)
    tight = (cost[src] + W == cost[dst]) & np.isfinite(cost[dst])
    bp = np.full((n, G), -1, dtype=np.int64)
    rows, cols = np.nonzero(tight)
    bp[dst[rows], cols] = order[rows]   # back-pointers name arcs of ``la``
    final = la.final_graph[:, None] + la.final_acoustic[:, None] * f[None, :]
    total = cost + final
    state = np.argmin(total, axis=0)
    ok = np.isfinite(total[state, np.arange(G)])
    gsum = la.final_graph[state].copy()
    asum = la.final_acoustic[state].copy()
    cur = np.where(ok, state, la.start)
    steps: list[np.ndarray] = []   # arc taken by each grid point at each step back (-1: arrived at the start)
    for _ in range(n):
        active = cur != la.start
        if not active.any():
            break
        arc = np.full(G, -1, dtype=np.int64)
        arc[active] = bp[cur[active], np.flatnonzero(active)]
        if (arc[active] < 0).any():
            raise UserFacingError("lattice best path: broken back-pointer (inconsistent lattice)")
        gsum[active] += la.graph[arc[active]]
        asum[active] += la.acoustic[arc[active]]
        cur[active] = la.src[arc[active]]
        steps.append(arc)
    taken = np.stack(steps) if steps else np.zeros((0, G), dtype=np.int64)
    paths = []
    for g in range(G):
        a = taken[:, g]
        labels = la.olabel[a[a >= 0]][::-1]
        paths.append([int(w) for w in labels[labels != 0]])
    out = []
    for g in range(G):
        words = paths[g] if ok[g] else []
        out.append(GridPath(words, float(gsum[g]) if ok[g] else float("nan"),
                            float(asum[g]) if ok[g] else float("nan"), len(words), bool(ok[g])))
    return out
