r"""Conditional couplings: pairs within a class, and x0 built from x1 (data-dependent)."""

from collections.abc import Callable
from typing import final

import torch
from torch import Tensor

from ._base import Batch0, Batch1, Coupling, Labels0, Labels1, PairIndices, _checked
from ._exact import OTCoupling

__all__ = ["DataDependentCoupling", "LabelConditionalCoupling"]


def _joint_classes(y0: tuple[Tensor, ...], y1: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, int]:
    """Class ids of every sample from the joint value of all label tensors."""
    if len(y0) != len(y1):
        raise ValueError(f"y0 and y1 must hold as many label tensors, got {len(y0)} and {len(y1)}")
    n0 = y0[0].shape[0]
    keys = []
    for k, (a, b) in enumerate(zip(y0, y1)):
        if a.dtype != b.dtype:
            raise TypeError(f"label {k} has dtype {a.dtype} in y0 but {b.dtype} in y1")
        keys.append(
            torch.cat([a, b])
            .reshape(-1, 1)
            .to(torch.float64 if a.is_floating_point() else torch.int64)
        )
    stacked = torch.cat(keys, dim=1) if len(keys) > 1 else keys[0]
    _, inverse = torch.unique(stacked, dim=0, return_inverse=True)
    n_classes = int(inverse.max()) + 1
    return inverse[:n0], inverse[n0:], n_classes


@final
class LabelConditionalCoupling(Coupling):
    r"""Run a coupling separately inside each class, so that pairs never cross classes.

    Samples belong to the same class when *all* their label tensors agree (pass a tuple of
    label tensors to condition on several labels jointly, e.g. class and attribute). The inner
    coupling (exact OT by default) is applied to each class's sub-batches; for a permutation
    coupling and equal class counts the result is again a permutation, so both marginals and
    the class-conditional marginals ρ0(· | y), ρ1(· | y) are kept. The output keeps x1's order:
    when the inner coupling uses every x1 of each class once in its order (``index1=None``, as
    every coupling that keeps x1's order returns), so does this one, and the call returns x1
    and its labels as they are; otherwise the pairs are sorted by their x1 index.
    Every class present in x1 must be present in x0 (and vice versa). The inner coupling's
    :meth:`~Coupling.pair` is called on each class's sub-batches, without labels; a coupling
    that constructs x0 or x1 (:class:`DataDependentCoupling`, :class:`ReflowCoupling
    <interpolants.coupling.ReflowCoupling>`) cannot be the inner one.

    With ``return_plan=True`` the plan is block-diagonal: class k's inner plan times the
    class's share of x1.

    Parameters
    ----------
    inner:
        The coupling applied within each class (default :class:`OTCoupling`).

    References
    ----------
    A. Tong et al., *Improving and generalizing flow-based generative models with minibatch
    optimal transport*, arXiv:2302.00482 (class-conditional OT-CFM).

    Example
    -------
    >>> import torch
    >>> from interpolants.coupling import LabelConditionalCoupling
    >>> x0, x1 = torch.randn(6, 2), torch.randn(6, 2)
    >>> y0 = torch.tensor([0, 1, 0, 1, 0, 1])
    >>> y1 = torch.tensor([1, 1, 0, 0, 1, 0])
    >>> p = LabelConditionalCoupling()(x0, x1, y0, y1)
    >>> bool((p.y0 == p.y1).all())
    True
    """

    def __init__(self, inner: Coupling | None = None) -> None:
        if inner is not None and not isinstance(inner, Coupling):
            raise TypeError(f"inner must be a Coupling, got {type(inner).__name__}")
        self.inner = OTCoupling() if inner is None else inner

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
        if y0 is None or y1 is None:
            raise ValueError("LabelConditionalCoupling needs labels: pass y0 and y1")
        c0, c1, n_classes = _joint_classes(y0, y1)
        n0, n1 = x0.shape[0], x1.shape[0]
        counts0 = torch.bincount(c0, minlength=n_classes).tolist()
        counts1 = torch.bincount(c1, minlength=n_classes).tolist()
        plan = torch.zeros((n0, n1), dtype=x0.dtype, device=x0.device) if want_plan else None
        parts0, parts1 = [], []
        in_order = True  # every class's inner pairing keeps its x1 in order (index1=None)
        for k in range(n_classes):
            if (counts0[k] == 0) != (counts1[k] == 0):
                side, other = ("x1", "x0") if counts0[k] == 0 else ("x0", "x1")
                raise ValueError(
                    f"a class has {max(counts0[k], counts1[k])} samples in {side} but none in "
                    f"{other}: every class must appear on both sides"
                )
            sub0 = torch.nonzero(c0 == k).squeeze(1)
            sub1 = torch.nonzero(c1 == k).squeeze(1)
            b0, b1 = x0[sub0], x1[sub1]
            part = self.inner.pair(b0, b1, None, None, generator=generator, want_plan=want_plan)
            part = _checked(part, b0, b1, type(self.inner).__name__)
            if part.x0 is not None or part.condition is not None or part.x1 is not None:
                raise TypeError(
                    f"LabelConditionalCoupling cannot wrap {self.inner!r}, which constructs x0 "
                    "or x1: a data-dependent or model-induced coupling pairs each sample with "
                    "one it builds already"
                )
            parts0.append(sub0[part.index0])
            parts1.append(sub1 if part.index1 is None else sub1[part.index1])
            in_order = in_order and part.index1 is None
            if plan is not None and part.plan is not None:
                block = part.plan / part.plan.sum() * (counts1[k] / n1)
                plan[sub0[:, None], sub1[None, :]] = block.to(plan.dtype)
        index0, index1 = torch.cat(parts0), torch.cat(parts1)
        if in_order:  # every x1 used once: scatter x0's indices into x1's order
            index0 = torch.empty_like(index0).index_put_((index1,), index0)
            return PairIndices(index0=index0, plan=plan)
        order = torch.argsort(index1, stable=True)
        return PairIndices(index0=index0[order], index1=index1[order], plan=plan)

    def __repr__(self) -> str:
        return f"LabelConditionalCoupling(inner={self.inner!r})"


@final
class DataDependentCoupling(Coupling):
    r"""x0 built from x1: the data-dependent coupling x0 ~ ρ0(· | x1, ξ).

    The user function maps ``(x1, noise)`` to ``x0`` (or to ``(x0, ξ)`` with conditioning
    information ξ), where ``noise`` is the x0 batch passed to the call (e.g.
    ``torch.randn_like(x1)``). Examples from the paper: in-painting, x0 = m ⊙ x1 + (1 − m) ⊙ ζ
    with a mask m (ξ = m); super-resolution, x0 = upsample(downsample(x1)) + σζ (ξ = the
    low-resolution image). Pair i is (f(x1)_i, x1_i): every x1 is used once, in order, and
    the pairs have the law of the coupling by construction. Learn b(t, x, ξ) with the usual
    square loss, conditioned on ξ (returned as :attr:`~Pairing.condition`). The one-sided
    score-from-velocity formula does not apply to these couplings.

    ``fn`` runs under :func:`torch.no_grad`, like every coupling's :meth:`~Coupling.pair`: the
    pairs are training data, and no gradient flows through the constructed x0 (x1 is returned
    as it is). The coupling itself reads no values: with a ``fn`` that needs none, a call never
    synchronises with the host, and NaN inputs pass through. Give a module-level function (not
    a lambda) for the coupling to pickle.

    Parameters
    ----------
    fn:
        ``fn(x1, noise) -> x0`` or ``-> (x0, xi)``, with x0 of x1's shape, dtype and device.

    References
    ----------
    M. S. Albergo, M. Goldstein, N. M. Boffi, R. Ranganath, E. Vanden-Eijnden, *Stochastic
    interpolants with data-dependent couplings*, arXiv:2310.03725.

    Example
    -------
    >>> import torch
    >>> from interpolants.coupling import DataDependentCoupling
    >>> mask = torch.tensor([1.0, 0.0])  # keep the first coordinate, noise the second
    >>> coupling = DataDependentCoupling(lambda x1, z: mask * x1 + (1 - mask) * z)
    >>> x1 = torch.tensor([[3.0, 4.0]])
    >>> coupling(torch.zeros(1, 2), x1).x0
    tensor([[3., 0.]])
    """

    def __init__(self, fn: Callable[[Tensor, Tensor], Tensor | tuple[Tensor, Tensor]]) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn

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
        if x0.shape != x1.shape:
            raise ValueError(
                f"the noise x0 must have x1's shape {tuple(x1.shape)}, got {tuple(x0.shape)}"
            )
        out = self.fn(x1, x0)
        new_x0, xi = out if isinstance(out, tuple) else (out, None)
        if not isinstance(new_x0, Tensor) or new_x0.shape != x1.shape:
            got = tuple(new_x0.shape) if isinstance(new_x0, Tensor) else type(new_x0).__name__
            raise ValueError(f"fn must return x0 of shape {tuple(x1.shape)}, got {got}")
        if new_x0.dtype != x1.dtype or new_x0.device != x1.device:
            raise TypeError("fn must return x0 with x1's dtype and device")
        if xi is not None and not isinstance(xi, Tensor):
            raise TypeError(f"fn must return xi as a tensor, got {type(xi).__name__}")
        index = torch.arange(x1.shape[0], device=x1.device)
        return PairIndices(index0=index, x0=new_x0, condition=xi)

    def __repr__(self) -> str:
        return f"DataDependentCoupling({self.fn!r})"
