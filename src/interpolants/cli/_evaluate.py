r"""Evaluating a trained run: samples, W2 per NFE, test NLL / bits per dim, and pictures.

Used by the command line and ``make demo``; every function takes the fields of a
:class:`Run` and returns plain numbers or tensors. Pictures need
matplotlib (imported lazily; install the ``plot`` extra).
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from .._atomic import write_atomic
from ..data import bits_per_dim
from ..fields import Field
from ..integrate import RK4, GammaProportionalDiffusion, Solution
from ..integrate._base import Integrator, time_grid
from ..integrate._dynamics import ODE, SDE
from ..integrate._fixed import Euler
from ..integrate._flow_map import FlowMap, FlowMapSteps
from ..integrate._likelihood import log_likelihood
from ..interpolant._base import Interpolant
from ..metrics._distances import wasserstein2

__all__ = [
    "flow_map_samples",
    "heldout_nll",
    "ode_samples",
    "plot_run",
    "sde_samples",
    "w2_table",
]


@torch.no_grad()
def ode_samples(
    velocity: Field,
    x0: Tensor,
    integrator: Integrator,
    steps: int,
    save: int = 0,
) -> Solution:
    """Integrate the probability-flow ODE from ``x0`` at t = 0 to t = 1 on a uniform grid.

    ``save > 0`` records the trajectory at ``save + 1`` evenly spaced grid times.
    """
    grid = time_grid(steps, dtype=x0.dtype, device=x0.device)
    save_at = grid[:: max(1, steps // save)] if save else None
    return integrator.integrate(ODE(velocity), x0, grid, save_at=save_at)


@torch.no_grad()
def flow_map_samples(flow_map: FlowMap, x0: Tensor, steps: int, save: int = 0) -> Solution:
    """Jump from ``x0`` at t = 0 to t = 1 with a mean flow's flow map, one evaluation of its
    average velocity per interval of a uniform grid of ``steps`` intervals (``steps = 1``: one
    jump, :class:`~interpolants.integrate.FlowMapSteps`).

    ``save > 0`` records the state at up to ``save + 1`` evenly spaced grid times.
    """
    grid = time_grid(steps, dtype=x0.dtype, device=x0.device)
    save_at = grid[:: max(1, steps // save)] if save else None
    return FlowMapSteps().integrate(flow_map, x0, grid, save_at=save_at)


@torch.no_grad()
def sde_samples(
    interpolant: Interpolant,
    velocity: Field,
    score: Field,
    x0: Tensor,
    epsilon: float,
    steps: int,
    generator: torch.Generator | None = None,
    integrator: Integrator | None = None,
) -> Solution:
    r"""Forward SDE samples with ε(t) = ε·σ(t)/max σ: peak ε, zero where the interpolant's noise
    scale σ vanishes (γ, or α if one-sided), by ``integrator`` (default
    :class:`~interpolants.Euler`, i.e. Euler–Maruyama).

    Vanishing with σ keeps ε·s = −ε·η_z/max σ bounded where a learned s = −η_z/σ is not. The
    maximum is over [0, 1] (a grid of 1025 points and the sampling grid), so ε(t) is the same
    function of t for every ``steps``; with ``steps = 1`` and σ(0) = σ(1) = 0 the step adds no
    noise. Raises :class:`ValueError` for an interpolant without noise (σ ≡ 0).
    """
    grid = time_grid(steps, dtype=x0.dtype, device=x0.device)
    fine = time_grid(1024, dtype=x0.dtype, device=x0.device)
    # one host read, before integrating
    peak = float(
        torch.maximum(interpolant.noise_scale(fine).max(), interpolant.noise_scale(grid).max())
    )
    if not peak > 0:
        raise ValueError(f"{interpolant!r} has no noise (σ ≡ 0): sample it with an ODE")
    diffusion = GammaProportionalDiffusion(interpolant, epsilon / peak)
    integrator = Euler() if integrator is None else integrator
    return integrator.integrate(SDE(velocity, score, diffusion), x0, grid, generator=generator)


def w2_table(
    velocity: Field,
    x0: Tensor,
    reference: Tensor,
    nfes: Sequence[int],
    integrator_factory: Callable[[], Integrator],
) -> dict[int, float]:
    """W2 between ODE samples and ``reference`` for each fixed-step count in ``nfes``."""
    out = {}
    for nfe in nfes:
        sol = ode_samples(velocity, x0, integrator_factory(), nfe)
        out[nfe] = wasserstein2(sol.state, reference)
    return out


def heldout_nll(
    velocity: Field,
    data: Tensor,
    base_log_prob: Callable[[Tensor], Tensor],
    steps: int = 64,
    levels: int | None = None,
    low: float = -1.0,
    high: float = 1.0,
    integrator: Integrator | None = None,
) -> dict[str, float]:
    """Mean test negative log-likelihood (nats) by the ODE with exact divergence, with
    ``integrator`` (default :class:`~interpolants.integrate.RK4`) on ``steps`` uniform steps.

    With ``levels`` (discrete data dequantised to [low, high)), also the bits per dimension.
    """
    grid = time_grid(steps, 1.0, 0.0, dtype=data.dtype, device=data.device)
    integrator = RK4() if integrator is None else integrator
    res = log_likelihood(velocity, data, base_log_prob, integrator=integrator, grid=grid)
    out = {"nll_nats": float(-res.log_prob.mean()), "nfe": float(res.nfe)}
    if levels is not None:
        bpd = bits_per_dim(res.log_prob, int(data[0].numel()), levels=levels, low=low, high=high)
        out["bits_per_dim"] = float(bpd.mean())
    return out


def plot_run(
    path: Path,
    target: Tensor,
    panels: dict[str, Tensor],
    trajectory: Tensor | None = None,
) -> None:
    """Scatter plots of the target and each named sample set, plus trajectories; PNG, atomic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = 1 + len(panels) + (trajectory is not None)
    fig, axes = plt.subplots(1, count, figsize=(3.2 * count, 3.4), squeeze=False)
    lim = float(target.abs().max()) * 1.3
    sets = [("target (held out)", target), *panels.items()]
    for ax, (title, pts) in zip(axes[0], sets):
        p = pts.detach().cpu()
        ax.scatter(p[:, 0], p[:, 1], s=1.5, alpha=0.5)
        ax.set_title(title, fontsize=9)
    if trajectory is not None:
        ax = axes[0][-1]
        tr = trajectory.detach().cpu()
        for i in range(min(tr.shape[1], 40)):
            ax.plot(tr[:, i, 0], tr[:, i, 1], lw=0.6, alpha=0.8)
        ax.scatter(tr[0, :40, 0], tr[0, :40, 1], s=4, c="k", label="t = 0")
        ax.scatter(tr[-1, :40, 0], tr[-1, :40, 1], s=4, c="r", label="t = 1")
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title("ODE trajectories", fontsize=9)
    for ax in axes[0]:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    try:
        write_atomic(path, lambda fh: fig.savefig(fh, dpi=110, format="png"))
    finally:
        plt.close(fig)
