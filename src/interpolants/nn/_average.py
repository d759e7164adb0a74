"""The average-velocity MLP u(t, r, x) of a mean flow (see :mod:`interpolants.nn`)."""

from typing import final

import torch
from jaxtyping import Float
from torch import Tensor, nn

from .._validation import check_floating

__all__ = ["AverageVelocityMLP"]

TimeArg = Float[Tensor, " batch"] | Float[Tensor, ""]
"""A time argument: one per sample, shape ``(B,)``, or one for the batch, shape ``()``."""


@final
class AverageVelocityMLP(nn.Module):
    r"""An average-velocity network u(t, r, x) for vector data: an MLP on [x, t, r − t].

    .. math:: u_θ(t, r, x) = W_{L}\,σ\big(\cdots σ(W_1 [x, t, r − t] + b_1) \cdots\big) + b_L,
              \qquad σ = \mathrm{SiLU},

    with ``depth`` hidden layers of width ``hidden``: the model of
    :class:`~interpolants.objective.MeanFlowObjective`, sampled in one or a few jumps
    x ↦ x + (r − t)·u(t, r, x) by :class:`~interpolants.integrate.FlowMapSteps` of
    :class:`~interpolants.integrate.FlowMap` ``(model)``; its instantaneous velocity
    u(t, t, x) (:meth:`FlowMap.velocity <interpolants.integrate.FlowMap.velocity>`) is an
    ordinary field for the ODE integrators and the likelihood.

    **The times enter as numbers**, not through the :class:`SinusoidalTimeEmbedding` of
    :class:`~interpolants.MLP`. The mean-flow target contains (r − t)·∂_t u, and an embedding
    of t scaled by 1000 makes ∂_t u of order 1000 at initialisation, so that term swamps the
    target and training is slow and noisy. With the features t and r − t, ∂_t u and ∂_r u are
    of the order of the weights, u is smooth in both times, and the instantaneous velocity
    u(t, t, ·) is the network at r − t = 0 exactly.

    Parameters
    ----------
    dim:
        The data dimension D.
    hidden:
        The width of the hidden layers.
    depth:
        The number of hidden layers (at least 1).

    Example
    -------
    Train it with the mean-flow loss, then sample in one jump from t = 0 to r = 1:

    >>> import torch
    >>> from interpolants import LinearInterpolant, time_grid
    >>> from interpolants.integrate import FlowMap, FlowMapSteps
    >>> from interpolants.nn import AverageVelocityMLP
    >>> from interpolants.objective import MeanFlowObjective
    >>> model = AverageVelocityMLP(2, hidden=32, depth=2)
    >>> t, r, x = torch.zeros(5), torch.ones(5), torch.randn(5, 2)
    >>> model(t, r, x).shape
    torch.Size([5, 2])
    >>> x0, x1 = torch.randn(8, 2), torch.randn(8, 2) + 3.0
    >>> MeanFlowObjective(LinearInterpolant()).loss(model, x0, x1).backward()
    >>> FlowMapSteps().integrate(FlowMap(model), torch.randn(5, 2), time_grid(1)).state.shape
    torch.Size([5, 2])
    """

    def __init__(self, dim: int, hidden: int = 256, depth: int = 3) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.dim = dim
        layers: list[nn.Module] = [nn.Linear(dim + 2, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(
        self, t: TimeArg, r: TimeArg, x: Float[Tensor, "batch dim"]
    ) -> Float[Tensor, "batch dim"]:
        """u(t, r, x), shape ``(B, dim)``, for ``x`` of shape ``(B, dim)`` and start and end
        times ``t``, ``r`` of shape ``(B,)`` or ``()`` (metadata is checked, no value read)."""
        check_floating(x, "x")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        n = x.shape[0]
        for name, time in (("t", t), ("r", r)):
            check_floating(time, name)
            if time.ndim > 1 or (time.ndim == 1 and time.shape[0] != n):
                raise ValueError(f"{name} must have shape () or ({n},), got {tuple(time.shape)}")
        t_col = t.to(x.dtype).expand(n)[:, None]
        gap = (r - t).to(x.dtype).expand(n)[:, None]
        out: Tensor = self.net(torch.cat([x, t_col, gap], dim=1))
        return out

    def extra_repr(self) -> str:
        first = self.net[0]
        assert isinstance(first, nn.Linear)
        return f"dim={self.dim}, hidden={first.out_features}, depth={len(self.net) // 2}"
