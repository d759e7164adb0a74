"""The controller variants of ``benchmarks/adaptive.py`` still plug into the adaptive loop.

The ablation overrides private hooks of :class:`~interpolants.integrate.EmbeddedRungeKutta`
(``_factor``, ``_step``); a change of their signatures must fail here, not in a benchmark run.
"""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
adaptive = pytest.importorskip("adaptive")


@pytest.mark.parametrize("label", list(adaptive.ABLATION))
def test_every_ablation_variant_solves_the_linear_problem(label: str) -> None:
    problem = adaptive.linear(False)
    state, nfe = adaptive.ABLATION[label](problem["field"], problem["x0"], 1e-6)
    worst, _ = adaptive.errors(state, problem["reference"])
    # Dopri5 at rtol = atol = 1e-6 on ẋ = A x (‖x‖ ~ 1, t ∈ [0, 1]): a global error of a few
    # 1e-6 at most; one first evaluation, six per attempted step, and Hairer's probe
    probe = 1 if "Hairer" in label else 0
    assert worst < 1e-4, (label, worst)
    assert (nfe - 1 - probe) % 6 == 0 and nfe < 400, (label, nfe)
    assert state.dtype == torch.float64
