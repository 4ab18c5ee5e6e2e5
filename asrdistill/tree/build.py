"""Greedy decision-tree building and within-root leaf merging (as Kaldi's build-tree / BuildTree).

1. Stub tree: a TableEventMap on the centre phone (key 1) to one sub-map per root. A "shared split" root
   starts as one leaf holding all its pdf-classes (the tree may later split on the pdf-class, key -1); a
   "not-shared" root starts as a TableEventMap on key -1 with one leaf per pdf-class; a "not-split" root
   keeps those per-pdf-class leaves for good (a monophone per pdf-class, e.g. silence if asked).
2. Splitting: a priority queue over leaves by the likelihood gain of their best question (keys 0, 2, -1,
   and 1 for roots with several phones); the best leaf is split until ``num_leaves`` leaves or the best
   gain falls below ``thresh``. Both sides of a split must hold at least ``min_count`` frames. The gains of
   all candidate questions of a leaf come from two matrix products: the leaf's statistics summed per
   (key, value), then per question.
3. Merging: within each leaf of the stub tree (a root, or one pdf-class of a not-shared root), leaves
   are clustered bottom-up, merging the pair that loses least likelihood while that loss is below
   ``cluster_thresh`` (default: the smallest gain of any split made, as Kaldi's --cluster-thresh=-1). Merged leaves share one pdf-id; pdf-ids are 0..num_pdfs-1 in root order.
"""
from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import scipy.sparse
from tqdm import tqdm

from asrdistill.tree.event_map import (PDF_CLASS_KEY, ConstantEventMap, EventMap, SplitEventMap,
                                       TableEventMap, Tree, map_events)
from asrdistill.tree.questions import Questions
from asrdistill.tree.stats import TreeStats, gauss_objf
from asrdistill.utils import get_logger

log = get_logger(__name__)

_KEYS = (0, 1, 2, PDF_CLASS_KEY)  # event key of each column of TreeStats.keys
_COL = {k: i for i, k in enumerate(_KEYS)}


@dataclass(frozen=True)
class Root:
    """One tree root (a line of Kaldi's roots.txt): phones that share a root, and how it may grow."""

    phones: tuple[int, ...]
    shared: bool = True  # all pdf-classes share one root (else one root per pdf-class)
    split: bool = True  # the tree may split this root on context (else: one leaf per pdf-class)


def make_roots(phones: Sequence[int], not_split: Sequence[int] = (),
               shared_sets: Sequence[Sequence[int]] = ()) -> list[Root]:
    """One "shared split" root per phone; phones in ``not_split`` become "not-shared not-split" roots
    (a monophone per pdf-class); each of ``shared_sets`` (e.g. all silence phones) becomes one root."""
    grouped = {p for s in shared_sets for p in s}
    ns = set(not_split)
    roots = [Root(tuple(sorted(s)), shared=not (set(s) & ns), split=not (set(s) & ns)) for s in shared_sets]
    roots += [Root((p,), shared=p not in ns, split=p not in ns) for p in phones if p not in grouped]
    return sorted(roots, key=lambda r: r.phones[0])


def parse_roots(text: str, phone_ids: Mapping[str, int], origin: str = "roots.txt") -> list[Root]:
    """Kaldi roots.txt: lines ``<shared|not-shared> <split|not-split> PHONE...``."""
    from asrdistill.errors import UserFacingError

    roots = []
    for lineno, line in enumerate(text.splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) < 3 or f[0] not in ("shared", "not-shared") or f[1] not in ("split", "not-split"):
            raise UserFacingError(f"{origin}:{lineno}: expected '<shared|not-shared> <split|not-split> "
                                  f"PHONE...', got {line!r}")
        try:
            phones = tuple(sorted(phone_ids[p] for p in f[2:]))
        except KeyError as e:
            raise UserFacingError(f"{origin}:{lineno}: unknown phone {e}") from e
        roots.append(Root(phones, shared=f[0] == "shared", split=f[1] == "split"))
    return roots


class _Node:
    """Mutable tree node used while building: a leaf (rows of the stats) or a split/table."""

    __slots__ = ("rows", "root", "splittable", "key", "yes_set", "yes", "no", "table", "pdf", "gain", "q")

    def __init__(self, rows: np.ndarray, root: int, splittable: bool):
        self.rows, self.root, self.splittable = rows, root, splittable
        self.key = None
        self.yes_set = self.yes = self.no = self.table = None
        self.pdf = -1
        self.gain, self.q = -np.inf, -1


class _Splitter:
    """Finds the best question for a set of statistics rows, for all questions at once."""

    def __init__(self, stats: TreeStats, questions: Questions, num_values: int, min_count: float):
        self.keys = stats.keys.astype(np.int64)
        self.data = np.concatenate([stats.counts[:, None], stats.sums, stats.sumsq], axis=1)
        self.dim = stats.dim
        self.var_floor = stats.var_floor
        self.min_count = max(float(min_count), 1e-3)
        self.nv = num_values
        qkeys, qsets, cols = [], [], []
        for key in _KEYS:
            for qs in questions.for_key(key):
                vals = [v for v in qs if 0 <= v < num_values]
                if not vals:
                    continue
                qkeys.append(key)
                qsets.append(tuple(sorted(vals)))
                cols.append([_COL[key] * num_values + v for v in vals])
        self.qkeys = np.array(qkeys)
        self.qsets = qsets
        member = np.zeros((4 * num_values, len(qsets)))
        for q, c in enumerate(cols):
            member[c, q] = 1.0
        # sparse (not BLAS) products: small multithreaded BLAS calls crawl on busy shared CPUs
        self.member_t = scipy.sparse.csr_matrix(member.T)
        self.offsets = np.arange(4) * num_values

    def objf(self, d: np.ndarray) -> np.ndarray:
        D = self.dim
        return gauss_objf(d[..., 0], d[..., 1:1 + D], d[..., 1 + D:], self.var_floor)

    def best(self, rows: np.ndarray, allow_centre: bool) -> tuple[float, int]:
        """(gain, question index) of the best split of ``rows``; gain -inf if none is allowed."""
        n = len(rows)
        if n < 2 or len(self.qsets) == 0:
            return -np.inf, -1
        d = self.data[rows]
        codes = (self.keys[rows] + self.offsets).ravel()
        width = d.shape[1]
        if n <= 64:  # statistics per (key, value): bincount is cheaper than building a sparse matrix
            flat = (codes[:, None] * width + np.arange(width)).ravel()
            per_value = np.bincount(flat, weights=np.repeat(d, 4, axis=0).ravel(),
                                    minlength=4 * self.nv * width).reshape(4 * self.nv, width)
        else:
            by_row = scipy.sparse.csr_matrix((np.ones(4 * n), codes, np.arange(0, 4 * n + 1, 4)),
                                             shape=(n, 4 * self.nv))
            per_value = by_row.T @ d  # [4 * num_values, 1 + 2D]
        yes = self.member_t @ per_value  # [Q, 1 + 2D]: statistics on the yes side of each question
        total = d.sum(0)
        ok = (yes[:, 0] >= self.min_count) & (total[0] - yes[:, 0] >= self.min_count)
        if not allow_centre:
            ok &= self.qkeys != 1
        cand = np.flatnonzero(ok)
        if len(cand) == 0:
            return -np.inf, -1
        yes = yes[cand]
        both = self.objf(np.concatenate([yes, total[None] - yes]))
        gains = both[:len(cand)] + both[len(cand):] - float(self.objf(total))
        best = int(np.argmax(gains))
        return float(gains[best]), int(cand[best])

    def split_rows(self, rows: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
        values = self.keys[rows, _COL[int(self.qkeys[q])]]
        yes = np.isin(values, self.qsets[q])
        return rows[yes], rows[~yes]


def _cluster_bottom_up(leaf_stats: np.ndarray, thresh: float, objf) -> np.ndarray:
    """Greedy bottom-up clustering: cluster id per item; merges while the likelihood loss < thresh."""
    L = len(leaf_stats)
    assign = np.arange(L)
    if L < 2:
        return assign
    S = leaf_stats.copy()
    own = objf(S)
    C = np.empty((L, L))
    block = max(1, int(4_000_000 // max(1, L * S.shape[1])))
    for i0 in range(0, L, block):
        i1 = min(L, i0 + block)
        C[i0:i1] = own[i0:i1, None] + own[None] - objf(S[i0:i1, None] + S[None])
    np.fill_diagonal(C, np.inf)
    active = np.ones(L, dtype=bool)
    rowarg = np.argmin(C, axis=1)
    rowmin = C[np.arange(L), rowarg]
    while True:
        i = int(np.argmin(rowmin))
        if not rowmin[i] < thresh:
            break
        j = int(rowarg[i])
        S[i] += S[j]
        own[i] = objf(S[i])
        assign[assign == j] = i
        active[j] = False
        C[j, :] = np.inf
        C[:, j] = np.inf
        rowmin[j] = np.inf
        new = own[i] + own - objf(S[i][None] + S)
        new[~active] = np.inf
        new[i] = np.inf
        C[i, :] = new
        C[:, i] = new
        stale = np.flatnonzero(active & ((rowarg == i) | (rowarg == j)))
        better = active & (new < rowmin)
        rowmin[better] = new[better]
        rowarg[better] = i
        stale = np.append(stale, i)
        rowarg[stale] = np.argmin(C[stale], axis=1)
        rowmin[stale] = C[stale, rowarg[stale]]
    return assign


def build_tree(stats: TreeStats, questions: Questions, roots: Sequence[Root],
               num_pdf_classes: Mapping[int, int], num_leaves: int, thresh: float = 300.0,
               min_count: float = 100.0, cluster_thresh: float = -1.0,
               return_info: bool = False, progress: bool = False):
    """Build a triphone tree (N=3, P=1) from ``stats``, as Kaldi's build-tree: a stub tree of one leaf per root
    (and pdf-class) (:func:`stub_tree`), greedy splitting by likelihood gain (:func:`split_leaves`), bottom-up
    merging of each root's leaves (:func:`merge_leaves`), conversion to EventMaps (:func:`to_event_map`).

    Args:
      questions: phone and pdf-class questions (see :func:`make_questions`).
      roots: tree roots; every phone with an HMM must be in exactly one root.
      num_pdf_classes: phone -> number of pdf-classes of its HMM (from the topology).
      num_leaves: maximum number of leaves after splitting (before merging).
      thresh: minimum likelihood gain of a split.
      min_count: minimum frames on each side of a split.
      cluster_thresh: leaves of a root are merged while the likelihood loss is below this; -1 uses the
        smallest gain of the splits made (Kaldi's default); 0 disables merging.
      progress: show a progress bar over the splits.
    Returns the Tree (and, if ``return_info``, a dict of build statistics).
    """
    t0 = time.time()
    all_phones = check_tree_inputs(stats, roots, num_pdf_classes)
    keys = stats.keys
    max_phone = max(all_phones)
    max_class = max(num_pdf_classes[p] for p in all_phones)
    num_values = max(max_phone, max_class, int(keys[:, [0, 2]].max()) if len(keys) else 0) + 1
    splitter = _Splitter(stats, questions, num_values, min_count)
    top, stub_leaves = stub_tree(keys, roots, num_pdf_classes, max_phone)
    if num_leaves < len(stub_leaves):
        log.warning("num_leaves=%d is below the %d leaves of the stub tree", num_leaves, len(stub_leaves))
    split = split_leaves(splitter, stub_leaves, [len(r.phones) > 1 for r in roots], num_leaves, thresh, progress)
    t_split = time.time() - t0
    if cluster_thresh < 0:
        cluster_thresh = split["smallest_split"] if np.isfinite(split["smallest_split"]) else 0.0
    num_pdfs, merge_loss = merge_leaves(splitter, stub_leaves, cluster_thresh)
    tree = Tree(to_event_map(top))
    info = {"num_leaves": split["num_leaves"], "num_pdfs": num_pdfs, "num_splits": split["num_splits"],
            "split_gain": split["total_gain"], "smallest_split": float(split["smallest_split"]),
            "cluster_thresh": float(cluster_thresh), "merge_loss": merge_loss,
            "objf_per_frame": None, "seconds_split": t_split, "seconds": time.time() - t0}
    if stats.num_frames > 0:
        info["objf_per_frame"] = _tree_objf(tree, stats) / stats.num_frames
    log.info("tree: %d leaves after %d splits (gain %.4g), %d pdfs after merging (loss %.4g), %.1fs",
             split["num_leaves"], split["num_splits"], split["total_gain"], num_pdfs, merge_loss, info["seconds"])
    return (tree, info) if return_info else tree


def check_tree_inputs(stats: TreeStats, roots: Sequence[Root], num_pdf_classes: Mapping[int, int]) -> list[int]:
    """The phones of ``roots`` (each in one root), checked against the statistics and the pdf-class counts."""
    keys = stats.keys
    all_phones = [p for r in roots for p in r.phones]
    if len(set(all_phones)) != len(all_phones):
        raise ValueError("a phone appears in more than one root")
    missing = [p for p in all_phones if p not in num_pdf_classes]
    if missing:
        raise ValueError(f"num_pdf_classes lacks phones {missing}")
    if len(keys):
        unknown = sorted(set(np.unique(keys[:, 1]).tolist()) - set(all_phones))
        if unknown:
            raise ValueError(f"statistics have centre phones {unknown} that are in no root")
        npc = np.array([num_pdf_classes[p] for p in keys[:, 1]])
        if np.any(keys[:, 3] >= npc):
            bad = keys[np.flatnonzero(keys[:, 3] >= npc)[0]]
            raise ValueError(f"statistics have pdf-class {bad[3]} for phone {bad[1]}, whose HMM has "
                             f"{num_pdf_classes[int(bad[1])]} pdf-classes")
    return all_phones


def stub_tree(keys: np.ndarray, roots: Sequence[Root], num_pdf_classes: Mapping[int, int],
              max_phone: int) -> tuple[_Node, list[_Node]]:
    """The tree before splitting: a table on the centre phone, then per root one leaf (shared roots) or a table
    on the pdf-class with one leaf per class. Returns the top node and the stub's leaves in order."""
    top = _Node(np.zeros(0, dtype=np.int64), -1, False)
    top.key, top.table = 1, [None] * (max_phone + 1)
    leaves: list[_Node] = []
    for ri, root in enumerate(roots):
        rows = np.flatnonzero(np.isin(keys[:, 1], root.phones))
        if root.shared and root.split:
            sub = _Node(rows, ri, True)
            leaves.append(sub)
        else:
            sub = _Node(rows, ri, False)
            n_cls = max(num_pdf_classes[p] for p in root.phones)
            sub.key, sub.table = PDF_CLASS_KEY, []
            for c in range(n_cls):
                leaf = _Node(rows[keys[rows, 3] == c], ri, root.split)
                sub.table.append(leaf)
                leaves.append(leaf)
        for p in root.phones:
            top.table[p] = sub
    return top, leaves


def split_leaves(splitter: "_Splitter", leaves: list[_Node], multi: list[bool], num_leaves: int, thresh: float,
                 progress: bool = False) -> dict[str, Any]:
    """Greedy splitting: always the leaf whose best question gains most, while the gain is at least ``thresh``
    and there are fewer than ``num_leaves`` leaves (ties by the order leaves were made)."""
    heap: list[tuple[float, int, _Node]] = []
    counter = itertools.count()

    def consider(leaf: _Node) -> None:
        if not leaf.splittable:
            return
        leaf.gain, leaf.q = splitter.best(leaf.rows, multi[leaf.root])
        if leaf.q >= 0:
            heapq.heappush(heap, (-leaf.gain, next(counter), leaf))

    for leaf in leaves:
        consider(leaf)
    num_cur = len(leaves)
    smallest_split, total_gain, num_splits = np.inf, 0.0, 0
    bar = tqdm(total=max(0, num_leaves - num_cur), desc="tree splits", unit="split", disable=not progress)
    while heap and num_cur < num_leaves:
        neg_gain, _, leaf = heapq.heappop(heap)
        if -neg_gain < thresh:
            break
        yes_rows, no_rows = splitter.split_rows(leaf.rows, leaf.q)
        leaf.key = int(splitter.qkeys[leaf.q])
        leaf.yes_set = splitter.qsets[leaf.q]
        leaf.yes = _Node(yes_rows, leaf.root, True)
        leaf.no = _Node(no_rows, leaf.root, True)
        smallest_split = min(smallest_split, -neg_gain)
        total_gain += -neg_gain
        num_splits += 1
        num_cur += 1
        bar.update(1)
        consider(leaf.yes)
        consider(leaf.no)
    bar.close()
    return {"num_leaves": num_cur, "smallest_split": smallest_split, "total_gain": total_gain,
            "num_splits": num_splits}


def _dfs_leaves(node: _Node) -> list[_Node]:
    """The leaves under ``node``, depth first (yes before no, table entries in order)."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        if n.key is None:
            out.append(n)
        elif n.table is not None:
            stack.extend(reversed(n.table))
        else:
            stack.extend((n.no, n.yes))
    return out


def merge_leaves(splitter: "_Splitter", stub_leaves: list[_Node], cluster_thresh: float) -> tuple[int, float]:
    """Bottom-up merging of the leaves under each stub leaf while the loss is below ``cluster_thresh`` (as
    Kaldi's ClusterEventMapRestrictedByMap(tree, stub)); numbers the pdfs. Returns (pdfs, likelihood loss)."""
    next_pdf = 0
    merge_loss = 0.0
    for stub_leaf in stub_leaves:
        root_leaves = _dfs_leaves(stub_leaf)
        st = np.array([splitter.data[leaf.rows].sum(0) for leaf in root_leaves]).reshape(len(root_leaves), -1)
        seen = np.flatnonzero(st[:, 0] > 0)
        assign = np.arange(len(root_leaves))
        if cluster_thresh > 0 and len(seen) > 1:
            sub_assign = _cluster_bottom_up(st[seen], cluster_thresh, splitter.objf)
            assign[seen] = seen[sub_assign]
            before = splitter.objf(st[seen]).sum()
            pooled = np.zeros_like(st)
            np.add.at(pooled, assign, st)
            merge_loss += float(before - splitter.objf(pooled[np.unique(assign[seen])]).sum())
        pdf_of_cluster: dict[int, int] = {}
        for leaf, a in zip(root_leaves, assign):
            if a not in pdf_of_cluster:
                pdf_of_cluster[a] = next_pdf
                next_pdf += 1
            leaf.pdf = pdf_of_cluster[a]
    return next_pdf, merge_loss


def to_event_map(node: _Node) -> EventMap:
    """The EventMap of the tree under ``node``: each node converted once (shared sub-maps stay shared), in an
    iterative post-order (no recursion limit on deep trees)."""
    converted: dict[int, EventMap] = {}
    stack = [(node, False)]
    while stack:
        n, done = stack.pop()
        if id(n) in converted:
            continue
        children = [] if n.key is None else (list(n.table) if n.table is not None else [n.yes, n.no])
        if not done:
            stack.append((n, True))
            stack.extend((c, False) for c in children if c is not None and id(c) not in converted)
            continue
        if n.key is None:
            em: EventMap = ConstantEventMap(n.pdf)
        elif n.table is not None:
            em = TableEventMap(n.key, [None if c is None else converted[id(c)] for c in n.table])
        else:
            em = SplitEventMap(n.key, tuple(n.yes_set), converted[id(n.yes)], converted[id(n.no)])
        converted[id(n)] = em
    return converted[id(node)]


def _tree_objf(tree: Tree, stats: TreeStats) -> float:
    """Total log-likelihood of the statistics with one Gaussian per pdf of ``tree``."""
    keys = stats.keys
    pdfs = map_events(tree.root, keys)
    cnt, s, ss = stats.pooled(pdfs, tree.num_pdfs)
    return float(gauss_objf(cnt, s, ss, stats.var_floor).sum())
