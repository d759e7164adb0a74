"""Matched-error comparison of :mod:`adaptive`: Pareto fronts of NFE against error.

A run is a row [tol, NFE, worst-sample error, batch RMS error]; each side's NFE at an error is
interpolated log–log on its Pareto front (the cheapest run reaching each error).
"""

import math
from typing import Any

import numpy as np
from torch import Tensor


def errors(x: Tensor, reference: Tensor) -> tuple[float, float]:
    per_sample = (x - reference).reshape(x.shape[0], -1).square().mean(1).sqrt()
    return float(per_sample.max()), float(per_sample.square().mean().sqrt())


METRICS = {"worst": 1, "rms": 2}


def front(curve: list[list[float]], col: int) -> tuple[np.ndarray, np.ndarray]:
    """log error (increasing) and log NFE of the Pareto front: the cheapest run to each error."""
    kept: list[list[float]] = []
    for p in sorted(curve, key=lambda p: (p[1], p[col + 1])):  # rows: tol, nfe, worst, rms
        if not kept or p[col + 1] < kept[-1][col + 1]:
            kept.append(p)
    err = np.log([p[col + 1] for p in kept])[::-1]
    nfe = np.log([p[1] for p in kept])[::-1]
    return err, nfe


def nfe_at(curve: list[list[float]], col: int, error: float) -> float | None:
    """NFE needed for ``error`` by log–log interpolation on the front (None outside it)."""
    err, nfe = front(curve, col)
    e = math.log(error)
    if e < err[0] - 1e-12 or e > err[-1] + 1e-12:
        return None
    return math.exp(float(np.interp(e, err, nfe)))


def compare(
    mine: list[list[float]], peers: dict[str, list[list[float]]], col: int
) -> list[dict[str, Any]]:
    """Ours / best peer at every error any run achieved, where both sides have a value."""
    seen = sorted({p[col + 1] for c in (mine, *peers.values()) for p in c})
    out = []
    for e in seen:
        o = nfe_at(mine, col, e)
        values = {k: nfe_at(c, col, e) for k, c in peers.items()}
        known = {k: v for k, v in values.items() if v is not None}
        if o is None or not known:
            continue
        best = min(known, key=known.__getitem__)
        out.append(
            {
                "error": e,
                "ours": o,
                "best_peer": best,
                "peer": known[best],
                "ratio": o / known[best],
            }
        )
    return out


def summarize(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [p["ratio"] for p in pairs]
    worse = [p for p in pairs if p["ratio"] > 1.0 + 1e-9]
    return {
        "errors": [p["error"] for p in pairs],
        "points": len(ratios),
        "max_ratio": max(ratios) if ratios else float("nan"),
        "geomean_ratio": float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan"),
        "worse": worse,
    }


def brief(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`summarize` with the number of errors where ours needs more NFE, not their list."""
    out = summarize(pairs)
    return {
        "points": out["points"],
        "max_ratio": out["max_ratio"],
        "geomean_ratio": out["geomean_ratio"],
        "worse": len(out["worse"]),
    }
