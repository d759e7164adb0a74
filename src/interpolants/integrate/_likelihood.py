r"""Log-likelihood of data under the probability-flow ODE.

Along ẋ = b(t, x) the log-density obeys d/dt log ρ_t(X_t) = −∇·b(t, X_t)
(:doc:`/mathematics`). To evaluate data x, integrate the augmented ODE backwards from X_1 = x,
ℓ_1 = 0 to t = 0,

.. math::

    \dot X_t = b(t, X_t),\qquad \dot ℓ_t = ∇·b(t, X_t),\qquad
    \log ρ_1(x) = \log ρ_0(X_0) + ℓ_0 = \log ρ_0(X_0) − \int_0^1 ∇·b(t, X_t)\,dt,

with any integrator of an :class:`ODE` (default: Dopri5) and a divergence
estimator (:mod:`interpolants.integrate`):

* :class:`ExactDivergence`: ∇·b = Σᵢ eᵢᵀ(∂b/∂x)eᵢ, all D
  vector–Jacobian products at once (one forward pass and one ``torch.func.vmap``-ed backward
  pass over the D basis vectors; no Python loop over dimensions; memory O(D²B), bounded by
  ``chunk_size``). A field that computes its own exact divergence (a
  :class:`DivergenceField`, such as :class:`MLP` on flat
  data) is asked for it instead: the same value with fewer operations;
* :class:`HutchinsonDivergence`: ∇·b ≈ (1/K) Σₖ εₖᵀ(∂b/∂x)εₖ with K
  Rademacher or Gaussian probes drawn once and **kept fixed along each trajectory**; the
  estimate of log ρ_1 is then unbiased (the probes do not feed back into X_t).

Both treat the samples of a batch as independent (∂b_i/∂x_j = 0 for i ≠ j), so the field must
not mix samples (no batch norm in training mode). ``nfe`` counts forward evaluations of b.

Bits per dimension of discrete data: :func:`interpolants.data.bits_per_dim`.

References
----------
W. Grathwohl et al., *FFJORD: Free-form Continuous Dynamics for Scalable Reversible Generative
Models*, arXiv:1810.01367. M. F. Hutchinson, *A stochastic estimator of the trace of the
influence matrix*, Commun. Stat. Simul. Comput. 18 (1989). M. S. Albergo, E. Vanden-Eijnden,
*Building Normalizing Flows with Stochastic Interpolants*, arXiv:2209.15571.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ..fields import Field
from ._adaptive import Dopri5
from ._base import CountedField, Integrator, check_generator, check_grid, check_state
from ._divergence import DivergenceEstimator, ExactDivergence, own_divergence
from ._dynamics import ODE

__all__ = ["LikelihoodResult", "log_likelihood"]


@dataclass(frozen=True)
class LikelihoodResult:
    """The result of :func:`log_likelihood`.

    Attributes
    ----------
    log_prob:
        log ρ1(x), shape ``(B,)``.
    base_state:
        X_0, the data mapped to the base, shape ``(B, *dims)``.
    base_log_prob:
        log ρ0(X_0), shape ``(B,)``.
    delta_log_prob:
        −∫₀¹ ∇·b dt, shape ``(B,)``, so that ``log_prob = base_log_prob + delta_log_prob``.
    nfe:
        Forward evaluations of the velocity.
    """

    log_prob: Tensor
    base_state: Tensor
    base_log_prob: Tensor
    delta_log_prob: Tensor
    nfe: int


class _AugmentedField:
    """The field (t, [x, ℓ]) ↦ [b(t, x), ∇·b(t, x)] on flat states (B, D + 1); subclasses
    compute the divergence. ``counted`` is the velocity b with its call counter (evaluations
    of the augmented field itself are not counted: NFE counts b)."""

    def __init__(self, counted: CountedField, shape: torch.Size) -> None:
        self.counted = counted
        self.shape = shape  # of x

    def state(self, y: Tensor) -> Tensor:
        """x from the augmented state [x, ℓ], in its own shape."""
        return y[:, :-1].reshape(self.shape)

    @staticmethod
    def join(b: Tensor, div: Tensor) -> Tensor:
        """The augmented derivative [b, div] of shape (B, D + 1)."""
        return torch.cat([b.reshape(div.shape[0], -1), div[:, None]], dim=1)

    def without_auxiliary(self, t: Tensor, y: Tensor) -> Tensor:
        """[b(t, x), 0]: for stages whose divergence the integrator does not use."""
        with torch.no_grad():
            b = self.counted(t, self.state(y))
        return self.join(b, y.new_zeros(y.shape[0]))


class _Augmented(_AugmentedField):
    """The divergence by vector–Jacobian products with ``vectors`` (exact or Hutchinson);
    ``keep_graph`` returns it differentiable with respect to the field's parameters."""

    def __init__(
        self,
        counted: CountedField,
        shape: torch.Size,
        vectors: Tensor,
        weight: float,
        chunk_size: int | None,
        keep_graph: bool = False,
    ) -> None:
        super().__init__(counted, shape)
        self.vectors = vectors
        self.weight = weight
        self.chunk_size = chunk_size
        self.keep_graph = keep_graph

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        primal = torch.func.vjp(lambda z: self.counted(t, z), self.state(y))
        b, vjp = primal[0], primal[1]
        (rows,) = torch.func.vmap(vjp, chunk_size=self.chunk_size)(self.vectors)
        div = (rows * self.vectors).flatten(2).sum(-1).sum(0) * self.weight
        out = self.join(b, div)
        return out if self.keep_graph else out.detach()


class _StructuredAugmented(_AugmentedField):
    """(b, ∇·b) from the field's own ``forward_and_divergence`` (flat data)."""

    def __init__(
        self,
        own: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
        counted: CountedField,
        shape: torch.Size,
    ) -> None:
        super().__init__(counted, shape)
        self.own = own

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        x = self.state(y)
        with torch.no_grad():
            b, div = self.own(t, x)
        if self.counted.count == 0 and div.shape != (x.shape[0],):
            raise ValueError(
                f"forward_and_divergence(t, x) must return a divergence of shape "
                f"({x.shape[0]},), got {tuple(div.shape)}"
            )
        return self.join(self.counted.record(b, x), div)


def log_likelihood(
    velocity: Field,
    x: Float[Tensor, "batch *dims"],
    base_log_prob: Callable[[Tensor], Tensor],
    *,
    integrator: Integrator | None = None,
    grid: Tensor | None = None,
    divergence: DivergenceEstimator | None = None,
    generator: torch.Generator | None = None,
    differentiable: bool = False,
) -> LikelihoodResult:
    r"""log ρ1(x) under the probability-flow ODE of ``velocity`` (see the module notes).

    Arguments
    ---------
    velocity:
        The velocity b(t, x) (field protocol), differentiable in x with ``torch.func``.
    x:
        Data at t = ``grid[0]`` (usually 1), shape ``(B, *dims)``.
    base_log_prob:
        log ρ0 as a callable on a batch ``(B, *dims)`` returning shape ``(B,)``.
    integrator:
        Any :class:`Integrator` that supports an :class:`ODE`;
        default :class:`Dopri5` with rtol = atol = 1e-5.
    grid:
        A decreasing time grid from the data time to the base time; default ``[1, 0]`` (enough
        for an adaptive integrator; give e.g. ``time_grid(50, 1.0, 0.0)`` for fixed steps).
    divergence:
        :class:`ExactDivergence` (default) or :class:`HutchinsonDivergence`.
    generator:
        Random generator for the Hutchinson probes.
    differentiable:
        Keep the autograd graph, so that the log-likelihood can be differentiated with respect
        to the field's parameters (and ``x``), e.g. for likelihood training or fine-tuning.
        Memory then grows with the number of steps; the field's own
        ``forward_and_divergence`` and the cheaper input-only stages are not used.

    Returns
    -------
    LikelihoodResult
        log ρ1(x) of shape ``(B,)`` and its parts. Unless ``differentiable``, the result is
        detached: this is an
        evaluation tool, not a training loss.

    Example
    -------
    >>> import math
    >>> import torch
    >>> from interpolants import log_likelihood
    >>> # b = x maps N(0, 1) at t = 0 to N(0, e²) at t = 1
    >>> base = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0)
    >>> x = torch.tensor([[0.5]], dtype=torch.float64)
    >>> res = log_likelihood(lambda t, y: y, x, lambda y: base.log_prob(y).sum(-1))
    >>> target = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), math.e)
    >>> abs(float(res.log_prob[0] - target.log_prob(x)[0, 0])) < 1e-5
    True
    """
    check_state(x)
    if not callable(base_log_prob):
        raise TypeError(f"base_log_prob must be callable, got {type(base_log_prob).__name__}")
    integrator = Dopri5() if integrator is None else integrator
    if not isinstance(integrator, Integrator):
        raise TypeError(f"integrator must be an Integrator, got {type(integrator).__name__}")
    divergence = ExactDivergence() if divergence is None else divergence
    if not isinstance(divergence, DivergenceEstimator):
        raise TypeError(
            f"divergence must be a DivergenceEstimator, got {type(divergence).__name__}"
        )
    check_generator(generator, x)
    g = torch.tensor([1.0, 0.0]) if grid is None else grid
    g = check_grid(g, x)
    if float(g[-1]) > float(g[0]):
        raise ValueError("grid must decrease (from the data at t = 1 towards the base at t = 0)")
    counted = CountedField(velocity, x, "velocity")
    augmented: _AugmentedField
    own = own_divergence(velocity)
    structured = isinstance(divergence, ExactDivergence) and divergence.structured
    if structured and x.ndim == 2 and own is not None and not differentiable:
        augmented = _StructuredAugmented(own, counted, x.shape)
    else:
        vectors, weight = divergence.vectors(x, generator)
        augmented = _Augmented(
            counted, x.shape, vectors, weight, divergence.chunk_size, keep_graph=differentiable
        )
    # an input-only stage's velocity feeds later stages: with a graph it must keep its own
    dynamics = ODE(augmented, partial=None if differentiable else augmented.without_auxiliary)
    if not integrator.supports(dynamics):
        raise TypeError(f"integrator {integrator!r} cannot step an ODE")
    data = x if differentiable else x.detach()
    start = torch.cat([data.reshape(x.shape[0], -1), x.new_zeros(x.shape[0], 1)], dim=1)
    solution = integrator.integrate(dynamics, start, g)
    base_state = solution.state[:, :-1].reshape(x.shape)
    delta = solution.state[:, -1]
    base_lp = base_log_prob(base_state)
    if not isinstance(base_lp, Tensor) or base_lp.shape != (x.shape[0],):
        raise ValueError(
            f"base_log_prob must return a tensor of shape ({x.shape[0]},), got "
            f"{tuple(base_lp.shape) if isinstance(base_lp, Tensor) else type(base_lp).__name__}"
        )
    base_lp = base_lp.to(x.dtype)
    return LikelihoodResult(
        log_prob=base_lp + delta,
        base_state=base_state,
        base_log_prob=base_lp,
        delta_log_prob=delta,
        nfe=counted.count,
    )
