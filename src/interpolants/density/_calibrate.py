r"""Choosing the integration grid of a trained flow by measured error.

A fixed-step integrator on n uniform steps costs a known number of evaluations (4n for RK4),
but its error depends on how curved the learned flow is. :func:`calibrate` measures it on
the data: it integrates the log-likelihood of a calibration batch (and samples from the base)
with a tight adaptive reference and with RK4 on increasing step counts, and returns the flow
with the fewest steps whose error is within the tolerances.
"""

from dataclasses import dataclass
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor

from ..integrate._adaptive import Dopri5
from ..integrate._base import Integrator, time_grid
from ..integrate._dynamics import ODE
from ..integrate._fixed import RK4
from ..integrate._likelihood import log_likelihood
from ._flow import InterpolantFlow

__all__ = ["Calibration", "calibrate"]


@final
@dataclass(frozen=True)
class Calibration:
    """The result of :func:`calibrate`.

    Attributes
    ----------
    flow:
        A new :class:`InterpolantFlow` sharing the velocity and base of the calibrated one,
        with RK4 on ``likelihood_steps`` (``log_prob``) and ``sample_steps`` (``sample``).
    likelihood_steps, sample_steps:
        The step counts chosen (the largest candidate when none meets its tolerance; see
        ``met``).
    met:
        Whether both tolerances were met.
    likelihood_errors:
        ``{steps: |mean(log p_RK4 − log p_ref)|}`` in nats, for each candidate tried.
    sample_errors:
        ``{steps: (mean |x1_RK4 − x1_ref|²)^{1/2}}`` from the same base points.
    """

    flow: InterpolantFlow
    likelihood_steps: int
    sample_steps: int
    met: bool
    likelihood_errors: dict[int, float]
    sample_errors: dict[int, float]


def calibrate(
    flow: InterpolantFlow,
    x: Float[Tensor, "batch *dims"],
    *,
    tolerance: float = 1e-2,
    sample_tolerance: float = 1e-2,
    candidates: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
    reference: Integrator | None = None,
    generator: torch.Generator | None = None,
) -> Calibration:
    r"""The cheapest RK4 grids whose log-likelihood and samples match a tight reference.

    For each candidate n (in increasing order, stopping at the first that passes) the
    log-likelihood of ``x`` is integrated with RK4 on n uniform steps and compared with the
    reference (default :class:`~interpolants.Dopri5` with rtol = atol = 1e-6):

    .. math::

        e_{\log p}(n) = \Bigl|\tfrac1B \textstyle\sum_i \bigl(\log p_n(x_i)
        − \log p_{\mathrm{ref}}(x_i)\bigr)\Bigr|

    (the error of the mean log-likelihood, i.e. of a reported NLL), and samples drawn from B
    base points x0 ~ ρ0 are compared with the reference's from the same points,
    e_x(n) = (1/B Σᵢ ‖x1_n,i − x1_ref,i‖²)^{1/2}. The smallest n with
    e_{log p}(n) ≤ ``tolerance`` sets ``log_prob``'s grid, the smallest with
    e_x(n) ≤ ``sample_tolerance`` the sampler's. The measurement is on ``x`` only: use a batch
    like the data to be evaluated (e.g. held-out points), large enough for its mean to be
    representative.

    Parameters
    ----------
    flow:
        The trained flow (its velocity and base are shared, not copied).
    x:
        Calibration data, shape ``(B, *event_shape)``.
    tolerance:
        Allowed error of the mean log-likelihood, in nats.
    sample_tolerance:
        Allowed RMS distance of the samples, in the data's units.
    candidates:
        Step counts to try, increasing.
    reference:
        The reference integrator (adaptive, or fixed-step on 256 steps).
    generator:
        Random generator for the base points (when the base's ``sample`` accepts none, the
        global one is used).

    Returns
    -------
    Calibration
        The flow with the chosen grids and the errors measured.

    Example
    -------
    >>> import torch
    >>> from torch.distributions import Independent, Normal
    >>> from interpolants.density import InterpolantFlow, calibrate
    >>> class Rotate(torch.nn.Module):  # b(t, x) = A x with A a rotation generator
    ...     def forward(self, t, x):
    ...         return torch.stack([-x[:, 1], x[:, 0]], dim=1)
    >>> base = Independent(Normal(torch.zeros(2, dtype=torch.float64), 1.0), 1)
    >>> flow = InterpolantFlow(Rotate(), base)
    >>> x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> cal = calibrate(flow, x, tolerance=1e-3, sample_tolerance=1e-3)
    >>> cal.met, cal.likelihood_steps, cal.sample_steps  # RK4 steps to rotate by 1 radian
    (True, 2, 2)
    >>> cal.flow().log_prob(x).shape
    torch.Size([64])
    """
    if not isinstance(flow, InterpolantFlow):
        raise TypeError(f"flow must be an InterpolantFlow, got {type(flow).__name__}")
    if not candidates or any(not isinstance(n, int) or n < 1 for n in candidates):
        raise ValueError(f"candidates must be positive integers, got {candidates!r}")
    if list(candidates) != sorted(set(candidates)):
        raise ValueError(f"candidates must increase, got {candidates!r}")
    if not (tolerance > 0 and sample_tolerance > 0):
        raise ValueError("tolerance and sample_tolerance must be positive")
    reference = Dopri5(rtol=1e-6, atol=1e-6) if reference is None else reference
    if not isinstance(reference, Integrator):
        raise TypeError(f"reference must be an Integrator, got {type(reference).__name__}")
    distribution = flow()
    base = distribution.base
    ref_steps = 1 if _adaptive(reference) else 256
    velocity, ode = flow.velocity, ODE(flow.velocity)

    def grid(n: int, forwards: bool) -> Tensor:
        start, end = (0.0, 1.0) if forwards else (1.0, 0.0)
        return time_grid(n, start, end, dtype=x.dtype, device=x.device)

    with torch.no_grad():
        ref_lp = log_likelihood(
            velocity, x, base.log_prob, integrator=reference, grid=grid(ref_steps, False)
        ).log_prob
        x0 = _base_sample(base, x.shape[0], generator).to(x.dtype)
        ref_x1 = reference.integrate(ode, x0, grid(ref_steps, True)).state
        rk4 = RK4()
        lp_errors: dict[int, float] = {}
        sample_errors: dict[int, float] = {}
        for n in candidates:
            if not lp_errors or min(lp_errors.values()) > tolerance:
                lp = log_likelihood(velocity, x, base.log_prob, integrator=rk4, grid=grid(n, False))
                lp_errors[n] = float((lp.log_prob - ref_lp).mean().abs())
            if not sample_errors or min(sample_errors.values()) > sample_tolerance:
                x1 = rk4.integrate(ode, x0, grid(n, True)).state
                sample_errors[n] = float((x1 - ref_x1).flatten(1).pow(2).sum(1).mean().sqrt())
    lp_steps = next((n for n, e in lp_errors.items() if e <= tolerance), candidates[-1])
    sample_steps = next(
        (n for n, e in sample_errors.items() if e <= sample_tolerance), candidates[-1]
    )
    met = lp_errors.get(lp_steps, 1.0) <= tolerance and sample_errors.get(sample_steps, 1.0) <= (
        sample_tolerance
    )
    tuned = InterpolantFlow(
        velocity,
        flow.base,
        sampler=RK4(),
        likelihood=RK4(),
        steps=lp_steps,
        sample_steps=sample_steps,
        divergence=flow.divergence,
        chunk=flow.chunk,
    )
    return Calibration(tuned, lp_steps, sample_steps, met, lp_errors, sample_errors)


def _adaptive(integrator: Integrator) -> bool:
    from ..integrate._adaptive import AdaptiveIntegrator

    return isinstance(integrator, AdaptiveIntegrator)


def _base_sample(
    base: torch.distributions.Distribution, n: int, generator: torch.Generator | None
) -> Tensor:
    if generator is None:
        return base.sample((n,))
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return base.sample((n,))
