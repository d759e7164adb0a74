r"""Reflow: the coupling (x0, X_1(x0)) of a trained model's flow (rectified flow)."""

import hashlib
import os
import warnings
from pathlib import Path
from typing import final

import torch
from jaxtyping import Float
from torch import Tensor, nn

from .._atomic import write_atomic
from ..fields import Field
from ..integrate._adaptive import AdaptiveIntegrator, Dopri5
from ..integrate._base import Integrator, check_state, time_grid
from ..integrate._dynamics import ODE
from ._base import Batch0, Batch1, Coupling, Labels0, Labels1, PairIndices

__all__ = ["ReflowCoupling"]


def _digest(h: "hashlib._Hash", x: Tensor) -> None:
    """Feed a tensor's dtype, shape and bytes to ``h`` (one copy to the host)."""
    h.update(f"{x.dtype}{tuple(x.shape)}".encode())
    flat = x.detach().to("cpu").contiguous().reshape(-1)
    h.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")


@final
class ReflowCoupling(Coupling):
    r"""Reflow: pair each x0 with the end point X_1(x0) of a trained model's ODE.

    With Φ the flow of ẋ = b(t, x) from t = 0 to t = 1 (``velocity`` integrated by
    ``integrator`` on a uniform grid of ``steps`` steps), the pairs are (x0, Φ(x0)): the
    coupling of rectified flow. A *model-induced* coupling: it constructs x1
    (:attr:`~PairIndices.x1`) instead of pairing the given x1, whose values it never reads
    (only its shape, which must be x0's). Trained with any objective on these pairs, a new
    model learns the rectified flow; repeating the procedure k times gives k-rectified flow.

    **Marginals and bias.** x0 is passed through, so its marginal is ρ0. The x1 marginal is
    the model's pushforward ρ̂1 = Φ#ρ0, *not* the data ρ1: reflow replaces the target by what
    the model generates. A model trained on these pairs transports ρ0 to ρ̂1, so the teacher's
    error (its learning error and the integration error of ``integrator``, measured by e.g.
    W2(ρ̂1, ρ1)) is inherited and never corrected, and each further round adds the new model's
    error on top. What reflow buys is straightness: the pairs are joined by the flow's
    non-crossing paths, the rectified flow's transport cost E c(X1 − X0) does not exceed Φ's
    for any convex c, and its paths are straighter, so fewer steps integrate it accurately.
    x0 and x1 are dependent, so the one-sided relations s = −η_z/α and s from b, which need
    x0 ~ N(0, I) independent of x1 (:doc:`/mathematics`, "Regression targets"), do not apply
    to models trained on these pairs.

    **Generation.** :meth:`generate` integrates in chunks of ``batch_size`` samples under
    :func:`torch.no_grad`, on x0's device and in its dtype; the field is called as it is (pass
    the EMA model, in eval mode). The ODE is deterministic: the same x0, chunks and integrator
    give the same x1 (an adaptive integrator controls the error over a whole chunk, so its
    steps, and the last bits of x1, depend on the chunking). ``generate(x0, cache=path)`` saves
    the pairs to disk and reloads them when the same x0 is given with the same model and
    settings. Labels are carried as given: the velocity is not conditioned on them.

    Parameters
    ----------
    velocity:
        The trained field b(t, x) (any field, e.g. an ``nn.Module`` called as ``model(t, x)``);
        a module-level function or a module for the coupling to pickle.
    integrator:
        Any :class:`~interpolants.Integrator` of an ODE (default
        :class:`~interpolants.Dopri5` with its default tolerances).
    steps:
        Intervals of the uniform grid from 0 to 1; default 1 for an adaptive integrator (it
        chooses its own steps), 100 for a fixed-step one.
    batch_size:
        Samples integrated at once (default: the whole batch).

    References
    ----------
    X. Liu, C. Gong, Q. Liu, *Flow Straight and Fast: Learning to Generate and Transfer Data
    with Rectified Flow*, arXiv:2209.03003.

    Example
    -------
    >>> import torch
    >>> from interpolants.integrate import RK4
    >>> from interpolants.coupling import ReflowCoupling
    >>> def shift(t, x):  # a "trained" field that moves every point by +1
    ...     return torch.ones_like(x)
    >>> coupling = ReflowCoupling(shift, RK4(), steps=4)
    >>> x0 = torch.zeros(3, 2)
    >>> pairs = coupling(x0, torch.empty(3, 2))  # the x1 batch only gives the shape
    >>> pairs.x1
    tensor([[1., 1.],
            [1., 1.],
            [1., 1.]])
    >>> pairs.x0 is x0
    True
    """

    def __init__(
        self,
        velocity: Field,
        integrator: Integrator | None = None,
        steps: int | None = None,
        *,
        batch_size: int | None = None,
    ) -> None:
        if not callable(velocity):
            raise TypeError(f"velocity must be callable as velocity(t, x), got {velocity!r}")
        if integrator is not None and not isinstance(integrator, Integrator):
            raise TypeError(f"integrator must be an Integrator, got {type(integrator).__name__}")
        method = Dopri5() if integrator is None else integrator
        if not method.supports(ODE(velocity)):
            raise TypeError(f"integrator {method!r} cannot integrate an ODE")
        if steps is None:
            steps = 1 if isinstance(method, AdaptiveIntegrator) else 100
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        self.velocity = velocity
        self.integrator = method
        self.steps = steps
        self.batch_size = batch_size

    def generate(
        self, x0: Float[Tensor, "n *dims"], *, cache: str | os.PathLike[str] | None = None
    ) -> Float[Tensor, "n *dims"]:
        """X_1(x0): the end points of the model's ODE from ``x0`` at t = 0, shape of ``x0``.

        Parameters
        ----------
        x0:
            Starting points, shape ``(n, *dims)``, floating and finite.
        cache:
            A file for the pairs: when it holds the pairs of this very ``x0`` (same values)
            made with the same model parameters, integrator, steps and chunks, x1 is loaded
            from it (``torch.load(weights_only=True)``) instead of integrated; otherwise x1 is
            integrated and the file (re)written atomically (a reader never sees half of it).
            The check hashes ``x0`` and, for an ``nn.Module``, its state dict on the host;
            for a plain function only its name enters, so use a new file when its code
            changes.

        Returns
        -------
        torch.Tensor
            x1 with x0's shape, dtype and device.
        """
        check_state(x0, "x0")
        key = self._fingerprint(x0) if cache is not None else ""
        if cache is not None and Path(cache).exists():
            stored = torch.load(cache, map_location=x0.device, weights_only=True)
            if isinstance(stored, dict) and stored.get("fingerprint") == key:
                x1: Tensor = stored["x1"].to(dtype=x0.dtype)
                return x1
            warnings.warn(
                f"{self!r}: the cache {os.fspath(cache)!r} holds pairs of another x0, model or "
                "setting; regenerating and overwriting it",
                RuntimeWarning,
                stacklevel=2,
            )
        grid = time_grid(self.steps, dtype=x0.dtype, device=x0.device)
        size = x0.shape[0] if self.batch_size is None else self.batch_size
        dynamics = ODE(self.velocity)
        with torch.no_grad():
            parts = [
                self.integrator.integrate(dynamics, chunk, grid).state
                for chunk in torch.split(x0, size)
            ]
        x1 = parts[0] if len(parts) == 1 else torch.cat(parts)
        if cache is not None:
            payload = {
                "fingerprint": key,
                "coupling": repr(self),
                "x0": x0.detach().to("cpu"),
                "x1": x1.to("cpu"),
            }
            write_atomic(cache, lambda fh: torch.save(payload, fh))
        return x1

    def _fingerprint(self, x0: Tensor) -> str:
        """sha256 of x0, the settings and the model's parameters (host-side, once per call)."""
        h = hashlib.sha256(repr(self).encode())
        _digest(h, x0)
        if isinstance(self.velocity, nn.Module):
            for name, value in self.velocity.state_dict().items():
                h.update(name.encode())
                _digest(h, value)
        return h.hexdigest()

    def pair(
        self,
        x0: Batch0,
        x1: Batch1,
        y0: Labels0,
        y1: Labels1,
        *,
        generator: torch.Generator | None,
        want_plan: bool,
    ) -> PairIndices:
        if x0.shape[0] != x1.shape[0]:
            raise ValueError(
                "ReflowCoupling generates one x1 per x0: x0 and x1 must have equal batch sizes "
                f"(the x1 values are not used), got {x0.shape[0]} and {x1.shape[0]}"
            )
        index = torch.arange(x0.shape[0], device=x0.device)
        return PairIndices(index0=index, x0=x0, x1=self.generate(x0))

    def __repr__(self) -> str:
        name = getattr(self.velocity, "__qualname__", type(self.velocity).__name__)
        return (
            f"ReflowCoupling({name}, {self.integrator!r}, steps={self.steps}, "
            f"batch_size={self.batch_size})"
        )
