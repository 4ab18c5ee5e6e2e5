"""Mixing up: splitting Gaussians towards a total, reproducibly (Kaldi's ``gmm-est --mix-up``).

Written by hand because kaldi-hmm-gmm's ``AmDiagGmm.split_by_count`` perturbs the split means with a random
vector drawn from a generator seeded by ``std::random_device`` on every call, so no two runs of the same
training agree. This module keeps Kaldi's rules and draws the perturbation from a seeded numpy generator:

* targets (Kaldi's ``GetSplitTargets``): every pdf starts with one Gaussian; one more Gaussian at a time goes
  to the pdf with the largest ``occupancy ** power / num_gaussians`` (ties: the lower pdf-id), unless it
  would leave fewer than ``min_count`` frames per Gaussian, in which case the pdf is frozen; a pdf never
  gets fewer Gaussians than it has;
* splitting a pdf (Kaldi's ``DiagGmm::Split``): repeatedly halve the weight of the heaviest Gaussian (the
  first of equal ones) and add a copy whose ``mean * inv_var`` is moved by ``+perturb * r * sqrt(inv_var)``
  while the original moves by ``-perturb * r * sqrt(inv_var)``, ``r`` a standard normal vector.

The generator of a split is seeded from (seed, pdf-id, the pdf's Gaussian count before the split), so the
result does not depend on the order or on which pdfs are split in the same call.
"""
from __future__ import annotations

import heapq
from typing import Any

import numpy as np


def split_targets(occs: np.ndarray, target: int, power: float, min_count: float) -> np.ndarray:
    """Gaussians per pdf (int [P]) for a total of ``target`` (see the module docstring)."""
    occs = np.asarray(occs, dtype=np.float64)
    num = np.ones(len(occs), dtype=np.int64)
    weight = np.power(np.maximum(occs, 0.0), power)
    heap = [(-w, p) for p, w in enumerate(weight)]
    heapq.heapify(heap)
    total = len(occs)
    while total < target and heap:
        neg, p = heapq.heappop(heap)
        if -neg <= 0:
            break
        if (num[p] + 1) * min_count >= occs[p]:
            continue  # frozen: too few frames for another Gaussian
        num[p] += 1
        total += 1
        heapq.heappush(heap, (-weight[p] / num[p], p))
    return num


def split_gmm(gmm: Any, target: int, perturb: float, rng: np.random.Generator) -> None:
    """Split the kaldi-hmm-gmm ``DiagGmm`` ``gmm`` in place up to ``target`` Gaussians."""
    weights = np.asarray(gmm.weights, dtype=np.float32).copy()
    n = len(weights)
    if target <= n:
        return
    inv_vars = np.asarray(gmm.inv_vars, dtype=np.float32)
    means_invvars = np.asarray(gmm.means_invvars, dtype=np.float32)
    dim = inv_vars.shape[1]
    w = np.zeros(target, np.float32)
    iv = np.zeros((target, dim), np.float32)
    mi = np.zeros((target, dim), np.float32)
    w[:n], iv[:n], mi[:n] = weights, inv_vars, means_invvars
    for cur in range(n, target):
        k = int(np.argmax(w[:cur]))
        w[k] /= 2
        w[cur] = w[k]
        r = rng.standard_normal(dim).astype(np.float32) * np.sqrt(iv[k])
        iv[cur] = iv[k]
        mi[cur] = mi[k] + perturb * r
        mi[k] = mi[k] - perturb * r
    gmm.resize(target, dim)
    gmm.set_weights(w)
    gmm.set_invvars_and_means(iv, mi / iv)
    gmm.compute_gconsts()


def mix_up(am: Any, occs: np.ndarray, target: int, perturb: float, power: float, min_count: float,
           seed: int) -> int:
    """Split the Gaussians of the ``AmDiagGmm`` ``am`` towards ``target`` in all; returns the new total."""
    wanted = split_targets(occs, target, power, min_count)
    for pdf in range(am.num_pdfs):
        gmm = am.get_pdf(pdf)  # a reference into am
        have = int(gmm.num_gauss)
        if wanted[pdf] > have:
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, pdf, have])
            split_gmm(gmm, int(wanted[pdf]), perturb, rng)
    am.compute_gconsts()
    return int(am.num_gauss)
