r"""Divergence estimators for the likelihood: exact (all D basis vectors) or Hutchinson.

Both write ∇·b as a weighted sum of quadratic forms vᵀ(∂b/∂x)v over probe vectors v (the D
basis vectors, or K random probes), evaluated by one forward pass and one
``torch.func.vmap``-ed backward pass; a field that computes its own exact divergence (a
:class:`DivergenceField`, such as :class:`MLP` on flat data) is asked for it
instead.

References
----------
M. F. Hutchinson, *A stochastic estimator of the trace of the influence matrix*, Commun. Stat.
Simul. Comput. 18 (1989). W. Grathwohl et al., *FFJORD: Free-form Continuous Dynamics for
Scalable Reversible Generative Models*, arXiv:1810.01367.
"""

import abc
from collections.abc import Callable
from typing import Literal, Protocol, final, runtime_checkable

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "DivergenceEstimator",
    "DivergenceField",
    "ExactDivergence",
    "HutchinsonDivergence",
    "own_divergence",
]


@runtime_checkable
class DivergenceField(Protocol):
    """A velocity field that also returns its exact divergence (e.g. :class:`MLP`).

    ``forward_and_divergence(t, x)`` returns ``(b(t, x), ∇ₓ·b(t, x))`` with shapes ``(B, D)``
    and ``(B,)``; :func:`log_likelihood` with :class:`ExactDivergence` calls it instead of
    differentiating ``b`` when the data are flat ``(B, D)``, the class that defines it also
    defines the call (``forward`` for a module, else ``__call__``; a subclass overriding only
    the call is differentiated as usual) and no forward hooks are registered on it or any of
    its submodules.
    """

    def forward_and_divergence(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]: ...


class DivergenceEstimator(abc.ABC):
    r"""Abstract estimator of ∇·b as a weighted sum of quadratic forms vᵀ(∂b/∂x)v.

    **Writing an estimator.** Implement :meth:`vectors` (the probe vectors v_k and the weight
    w, so that ∇·b ≈ w Σ_k v_kᵀ(∂b/∂x)v_k) and :attr:`chunk_size`. The likelihood draws the
    vectors once per call and keeps them fixed along each trajectory, and evaluates all the
    vector–Jacobian products with one forward pass and one ``torch.func.vmap``-ed backward pass.

    Example
    -------
    >>> import torch
    >>> from interpolants import log_likelihood
    >>> from interpolants.integrate import DivergenceEstimator
    >>> class OneProbe(DivergenceEstimator):  # exact in 1-D
    ...     def vectors(self, x, generator=None):
    ...         return torch.ones(1, *x.shape, dtype=x.dtype), 1.0
    ...     @property
    ...     def chunk_size(self):
    ...         return None
    >>> x = torch.zeros(3, 1, dtype=torch.float64)
    >>> res = log_likelihood(lambda t, y: 2 * y, x, lambda y: torch.zeros(y.shape[0]),
    ...                      divergence=OneProbe())  # −∫ ∇·b dt = −2
    >>> torch.allclose(res.delta_log_prob, torch.full((3,), -2.0, dtype=torch.float64))
    True
    """

    @abc.abstractmethod
    def vectors(
        self, x: Float[Tensor, "batch *dims"], generator: torch.Generator | None = None
    ) -> tuple[Float[Tensor, "probes batch *dims"], float]:
        """The probe vectors v_k, shape ``(K, B, *dims)`` on x's dtype and device, and the
        weight w of each quadratic form (drawn with ``generator`` if random)."""

    @property
    @abc.abstractmethod
    def chunk_size(self) -> int | None:
        """How many vector–Jacobian products ``vmap`` evaluates at once (``None``: all)."""


@final
class ExactDivergence(DivergenceEstimator):
    """The exact trace of the Jacobian from D vectorised vector–Jacobian products.

    Parameters
    ----------
    chunk_size:
        Passed to ``torch.func.vmap``: evaluate this many basis vectors at once to bound the
        O(D²B) memory (``None``: all D at once). The default 16 keeps the intermediates in a
        CPU's caches (measured in ``benchmarks/likelihood.py``); on a GPU ``None`` is usually
        fastest.
    structured:
        Use the field's own ``forward_and_divergence`` when it is a :class:`DivergenceField`
        and the data are flat (``interpolants.MLP``: forward-mode tangents as large matrix
        products). ``False`` always differentiates with ``torch.func``.
    """

    def __init__(self, chunk_size: int | None = 16, structured: bool = True) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be positive or None, got {chunk_size}")
        self._chunk_size = chunk_size
        self.structured = bool(structured)

    @property
    def chunk_size(self) -> int | None:
        return self._chunk_size

    def vectors(
        self, x: Float[Tensor, "batch *dims"], generator: torch.Generator | None = None
    ) -> tuple[Float[Tensor, "probes batch *dims"], float]:
        dim = x[0].numel()
        eye = torch.eye(dim, dtype=x.dtype, device=x.device).reshape(dim, 1, *x.shape[1:])
        return eye.expand(dim, *x.shape), 1.0

    def __repr__(self) -> str:
        return f"ExactDivergence(chunk_size={self._chunk_size}, structured={self.structured})"


@final
class HutchinsonDivergence(DivergenceEstimator):
    r"""Hutchinson's unbiased trace estimator with probes fixed along each trajectory.

    Parameters
    ----------
    probes:
        The number K of probe vectors per sample (averaged).
    noise:
        ``"rademacher"`` (entries ±1; lower variance) or ``"gaussian"`` (N(0, I)).
    """

    def __init__(
        self, probes: int = 1, noise: Literal["rademacher", "gaussian"] = "rademacher"
    ) -> None:
        if not isinstance(probes, int) or probes < 1:
            raise ValueError(f"probes must be a positive integer, got {probes!r}")
        if noise not in ("rademacher", "gaussian"):
            raise ValueError(f"noise must be 'rademacher' or 'gaussian', got {noise!r}")
        self.probes = probes
        self.noise = noise

    @property
    def chunk_size(self) -> int | None:
        return None

    def vectors(
        self, x: Float[Tensor, "batch *dims"], generator: torch.Generator | None = None
    ) -> tuple[Float[Tensor, "probes batch *dims"], float]:
        shape = (self.probes, *x.shape)
        v = torch.randn(shape, generator=generator, dtype=x.dtype, device=x.device)
        if self.noise == "rademacher":
            v = torch.where(v >= 0, 1.0, -1.0).to(x.dtype)
        return v, 1.0 / self.probes

    def __repr__(self) -> str:
        return f"HutchinsonDivergence(probes={self.probes}, noise={self.noise!r})"


def own_divergence(velocity: object) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None:
    """The field's ``forward_and_divergence`` if it surely describes the field's own output.

    That is when the class that defines the method also defines the call (``forward`` for an
    ``nn.Module``, else ``__call__``), so a subclass that overrides the call without the
    method is not trusted, and when no forward hooks (global, or on any submodule) can change
    the output.
    """
    own = getattr(velocity, "forward_and_divergence", None)
    if not callable(own):
        return None
    call = "forward" if isinstance(velocity, torch.nn.Module) else "__call__"
    mro = type(velocity).__mro__
    owner_call = next((k for k in mro if call in vars(k)), None)
    owner_own = next((k for k in mro if "forward_and_divergence" in vars(k)), None)
    if owner_call is None or owner_call is not owner_own:
        return None
    if isinstance(velocity, torch.nn.Module):
        from torch.nn.modules import module as module_globals

        hooks = [module_globals._global_forward_hooks, module_globals._global_forward_pre_hooks]
        for m in velocity.modules():  # a hook on any layer would be bypassed
            hooks += [m._forward_hooks, m._forward_pre_hooks]
        if any(len(h) for h in hooks):
            return None
    fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] = own
    return fn
