"""The time-conditioned MLPs (see :mod:`interpolants.nn`)."""

import math
from typing import Union, final

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from .._validation import check_floating

__all__ = ["SinusoidalTimeEmbedding", "TwoHeadMLP", "drop_labels"]

Condition = Union[
    Int[Tensor, " batch"],
    Float[Tensor, "batch ..."],
    tuple[Int[Tensor, " batch"], Float[Tensor, "batch ..."]],
    None,
]
"""What the MLPs accept as ``condition``: labels, a float context, both, or nothing."""


@final
class SinusoidalTimeEmbedding(nn.Module):
    r"""e(t) = [sin(ω_k t), cos(ω_k t)]_k with ω_k = scale · max_period^{−k/half}.

    Parameters
    ----------
    dim:
        Embedding size (even).
    scale:
        Multiplies t ∈ [0, 1] first (1000 by default: frequencies spread as for integer steps).
    """

    def __init__(self, dim: int = 64, scale: float = 1000.0, max_period: float = 10_000.0):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even integer ≥ 2, got {dim}")
        half = dim // 2
        freqs = scale * torch.exp(-math.log(max_period) * torch.arange(half) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: Float[Tensor, " batch"]) -> Float[Tensor, "batch emb"]:
        freqs: Tensor = self.freqs  # type: ignore[assignment]
        angles = t[:, None].to(freqs.dtype) * freqs[None]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).to(t.dtype)


@final
class MLP(nn.Module):
    r"""A time-conditioned MLP f(t, x[, c]) for vector data.

    ``depth`` hidden layers of width ``hidden`` with SiLU activations take the concatenation of
    x and the conditioning vector e = W_t·embed(t) [+ embed(y)] [+ W_ξ·ξ]: a projected
    sinusoidal embedding of t, optionally a class embedding of labels y, optionally a linear
    projection of a float context ξ (e.g. the mask or low-resolution image of a
    data-dependent coupling, which :class:`~interpolants.Trainer` passes as ``condition``).
    The ``condition`` of :meth:`forward` is then: integer labels of shape ``(batch,)`` (with
    ``num_classes``), a float context (with ``context_dim``), or the pair ``(labels, ξ)``
    (with both), the trainer's order.

    Parameters
    ----------
    dim:
        Data dimension (input and output size).
    hidden, depth:
        Width and number of hidden layers.
    time_embedding:
        Size of the sinusoidal time embedding.
    num_classes:
        Number of classes for conditioning (``None``: no labels). Index ``num_classes`` is
        the null label used by classifier-free guidance.
    context_dim:
        Number of features of a float context ξ (``None``: no context); ξ of shape
        ``(batch, *shape)`` with ``prod(shape) = context_dim`` is flattened per sample.

    Example
    -------
    >>> import torch
    >>> from interpolants import MLP
    >>> net = MLP(2, hidden=32, depth=2)
    >>> net(torch.rand(5), torch.randn(5, 2)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 256,
        depth: int = 3,
        time_embedding: int = 64,
        num_classes: int | None = None,
        context_dim: int | None = None,
    ) -> None:
        super().__init__()
        if dim < 1 or hidden < 1 or depth < 1:
            raise ValueError(f"dim, hidden, depth must be positive, got {dim}, {hidden}, {depth}")
        if context_dim is not None and context_dim < 1:
            raise ValueError(f"context_dim must be positive, got {context_dim}")
        self.dim = dim
        self.num_classes = num_classes
        self.context_dim = context_dim
        self.context_proj = nn.Linear(context_dim, hidden) if context_dim is not None else None
        self.time_embedding = SinusoidalTimeEmbedding(time_embedding)
        self.time_proj = nn.Linear(time_embedding, hidden)
        self.label_embedding = (
            nn.Embedding(num_classes + 1, hidden) if num_classes is not None else None
        )
        layers: list[nn.Module] = [nn.Linear(dim + hidden, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(
        self,
        t: Float[Tensor, " batch"] | Float[Tensor, ""],
        x: Float[Tensor, "batch dim"],
        condition: Condition = None,
    ) -> Float[Tensor, "batch dim"]:
        """f(t, x[, y]), shape ``(batch, dim)``.

        The first layer is applied as W₁ˣ x + (W₁ᵉ e + b₁) with e the conditioning vector
        (time and label embeddings), so when all samples share one time (a 0-d ``t``, or a
        stride-0 expanded one, as every integrator of this library passes) and there are no
        labels, e and its contribution are computed once, not per sample.
        """
        return self._apply_layers(t, x, condition)

    def forward_and_divergence(
        self,
        t: Float[Tensor, " batch"] | Float[Tensor, ""],
        x: Float[Tensor, "batch dim"],
        condition: Condition = None,
        chunk_size: int | None = None,
    ) -> tuple[Float[Tensor, "batch dim"], Float[Tensor, " batch"]]:
        r"""f(t, x[, y]) and its exact divergence ∇ₓ·f = tr(∂f/∂x), by forward-mode tangents.

        With pre-activations a_l, slopes s_l = SiLU′(a_l) (D_l = diag s_l), hidden-to-hidden
        weights W₂ … W_L (L = ``depth``), W₁ˣ the columns of the first layer that see x and W_o
        the output layer, ∂f/∂x = W_o D_L W_L ⋯ D₂ W₂ D₁ W₁ˣ, so
        ∇ₓ·f = Σᵢ W_o[i]·(D_L T_{L,i}) with tangents T_{1,i} = W₁ˣ eᵢ and
        T_{l+1,i} = W_{l+1} D_l T_{l,i}. The forward pass runs once over the whole batch and
        keeps the slopes. The constant matrices at both ends are folded into the weights next
        to them, so no tangent is multiplied by W₁ˣ or reduced against W_o:

        - ``depth = 1``: ∇ₓ·f = s₁·v with v_k = Σᵢ W_o[i, k] W₁ˣ[k, i].
        - ``depth = 2``: ∇ₓ·f = s₂·(s₁ K) with K = W₂ᵀ ⊙ (W₁ˣ W_o): one (hidden × hidden)
          product per sample, *whatever* ``dim`` is.
        - ``depth ≥ 3``: the tangents of all directions start as one product
          T₂ = s₁ [M₁ … M_dim] with Mᵢ = diag(W₁ˣ eᵢ) W₂ᵀ, cross the inner layers as
          ``(chunk, dim, hidden)`` tensors and end in one product with
          N[(i, j), k] = W_L[k, j] W_o[i, k]: ∇ₓ·f = s_L·(u N) with uᵢ = D_{L−1} T_{L−1,i}.
          The work is that of ``dim`` Jacobian–vector products, as large matrix products
          without autograd bookkeeping.

        :func:`log_likelihood` uses it with
        :class:`ExactDivergence` (``benchmarks/likelihood.py`` compares
        it with flow_matching's autograd divergence and with ``torch.func.vmap`` over
        ``torch.func.vjp``).

        Parameters
        ----------
        t, x, condition:
            As in :meth:`forward`.
        chunk_size:
            Samples per tangent block when ``depth ≥ 3``. Directions go in blocks of
            n = max(1, 2¹⁸ // hidden²), so that a block's [Mᵢ]ᵢ and N hold at most 2¹⁸ entries
            each when hidden ≤ 512 (1 MiB in float32: they stay in cache), and hidden²
            otherwise. Memory O(chunk_size · min(n, dim) · hidden). ``None``:
            blocks of about 2²⁰ tangent entries (4 MiB in float32), at least 16 samples.

        Returns
        -------
        tuple of Tensor
            f(t, x[, y]) of shape ``(batch, dim)`` and its divergence, shape ``(batch,)``.

        Notes
        -----
        Meant for evaluation (:func:`log_likelihood` calls it under
        :func:`torch.no_grad`): the divergence is not differentiable with respect to the
        parameters, since the slopes come from ATen's ``silu_backward``, which has no derivative
        of its own. To train through a divergence, use autograd on :meth:`forward`.
        """
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        layers = [m for m in self.net if isinstance(m, nn.Linear)]
        h = self._first_layer(t, x, condition)
        slopes = []
        ones = h.new_ones(()).expand_as(h)
        for layer in layers[1:]:
            # SiLU′(a) = σ(a)(1 + a(1 − σ(a))) in one pass: ATen's SiLU backward kernel with a
            # unit gradient
            slopes.append(torch.ops.aten.silu_backward(ones, h))
            h = nn.functional.linear(nn.functional.silu(h), layer.weight, layer.bias)
        w_x = layers[0].weight[:, : self.dim]  # (hidden, dim): ∂a₁/∂x
        w_o = layers[-1].weight  # (dim, hidden)
        inner = [m.weight for m in layers[1:-1]]
        if not inner:
            return h, slopes[0] @ (w_x * w_o.T).sum(1)
        if len(inner) == 1:
            fold = inner[0].T * (w_x @ w_o)  # K = W₂ᵀ ⊙ (W₁ˣ W_o)
            return h, torch.linalg.vecdot(slopes[0] @ fold, slopes[1])
        return h, _tangent_divergence(slopes, w_x, inner, w_o, chunk_size)

    def features(
        self,
        t: Float[Tensor, " batch"] | Float[Tensor, ""],
        x: Float[Tensor, "batch dim"],
        condition: Condition = None,
    ) -> Float[Tensor, "batch features"]:
        """The input of the first layer: [x, e] with e = embed(t) (+ embed(y)) per sample."""
        return _joined(x, self._conditioning(t, x, condition))

    def _split(self, condition: Condition) -> tuple[Tensor | None, Tensor | None]:
        """(labels, context) of a condition (see the class notes)."""
        if condition is None:
            return None, None
        if isinstance(condition, tuple):
            if len(condition) != 2:
                raise ValueError("a tuple condition must be the pair (labels, context)")
            return condition[0], condition[1]
        if condition.is_floating_point():
            if self.context_proj is None:
                raise ValueError("a float condition given to an MLP built without context_dim")
            return None, condition
        return condition, None

    def _conditioning(self, t: Tensor, x: Tensor, condition: Condition) -> Tensor:
        """e = time_proj(embed(t)) (+ embed(y)) (+ context_proj(ξ)) in x's dtype: one row for a
        shared ``t`` (0-d, or expanded with stride 0 as the integrators pass it) without labels
        or context, else one per sample."""
        _check_inputs(t, x, self.dim)
        labels, context = self._split(condition)
        if t.ndim == 0:
            t = t.reshape(1)
        elif t.shape[0] > 1 and t.stride(0) == 0:  # a broadcast view: every entry is t[0]
            t = t[:1]
        e: Tensor = self.time_proj(self.time_embedding(t))
        if self.label_embedding is not None:
            if labels is None:  # the null label, one row that broadcasts
                labels = torch.full((1,), self.label_embedding.num_embeddings - 1, device=x.device)
            e = e + self.label_embedding(labels)
        elif labels is not None:
            raise ValueError("labels given to an MLP built without num_classes")
        if self.context_proj is not None:
            if context is None:
                raise ValueError(f"this MLP needs a context of {self.context_dim} features")
            flat = context.reshape(context.shape[0], -1)
            if flat.shape[1] != self.context_dim:
                raise ValueError(
                    f"the context must have {self.context_dim} features per sample, got "
                    f"{flat.shape[1]}"
                )
            e = e + self.context_proj(flat.to(self.context_proj.weight.dtype))
        elif context is not None:
            raise ValueError("a context given to an MLP built without context_dim")
        return e.to(x.dtype)

    def _apply_layers(self, t: Tensor, x: Tensor, condition: Condition) -> Tensor:
        """The network's output (of whatever width its last layer has)."""
        modules = iter(self.net)
        next(modules)  # the first layer, applied by _first_layer
        out = self._first_layer(t, x, condition)
        for module in modules:
            out = module(out)
        return out

    def _first_layer(self, t: Tensor, x: Tensor, condition: Condition) -> Tensor:
        """The first layer's pre-activation W₁[x, e] + b₁, shape ``(batch, hidden)``.

        For one shared row e it is W₁ˣ x + (W₁ᵉ e + b₁), with W₁ᵉ e + b₁ computed once; with
        one e per sample (training), the layer on the concatenation, whose backward pass is
        cheaper than through two column blocks of W₁.
        """
        first = self.net[0]
        assert isinstance(first, nn.Linear)
        e = self._conditioning(t, x, condition)
        if e.shape[0] == 1 < x.shape[0]:
            bias = nn.functional.linear(e, first.weight[:, self.dim :], first.bias)
            return torch.addmm(bias, x, first.weight[:, : self.dim].T)
        out: Tensor = first(_joined(x, e))
        return out


_FOLD_ENTRIES = 2**18  # most entries of one folded M or N: 1 MiB in float32, kept in cache
_TANGENT_ENTRIES = 2**20  # entries of one default tangent block (4 MiB in float32)


def _tangent_divergence(
    slopes: list[Tensor], w_x: Tensor, inner: list[Tensor], w_o: Tensor, chunk_size: int | None
) -> Tensor:
    """Σᵢ W_o[i]·(D_L T_{L,i}) for depth ≥ 3 (see :meth:`~MLP.forward_and_divergence`), in
    blocks of directions and of samples."""
    (batch, width), dim = slopes[0].shape, w_x.shape[1]
    block = max(1, _FOLD_ENTRIES // (width * width))
    if chunk_size is None:
        chunk_size = max(16, _TANGENT_ENTRIES // (min(block, dim) * width))
    # both folds are built as the (transposed) weight operands of F.linear from *rows* of W₂ and
    # W_L: contiguous reads
    w_x_t, w_o_t = w_x.T.contiguous(), w_o.T.contiguous()  # (dim, hidden), (hidden, dim)
    div = slopes[0].new_zeros(batch)
    for d0 in range(0, dim, block):
        dirs, n = slice(d0, d0 + block), min(block, dim - d0)
        # Mᵀ[(i, k), j] = W₂[k, j] W₁ˣ[j, i]: s₁ M = [T₂ᵢ]ᵢ
        m_t = (inner[0][None] * w_x_t[dirs, None, :]).reshape(n * width, width)
        # Nᵀ[k, (i, j)] = W_L[k, j] W_o[i, k]: (u N)_k = Σᵢ W_o[i, k] (W_L uᵢ)_k
        n_t = (inner[-1][:, None, :] * w_o_t[:, dirs, None]).reshape(width, n * width)
        for start in range(0, batch, chunk_size):
            rows = slice(start, start + chunk_size)
            tangent = nn.functional.linear(slopes[0][rows], m_t).view(-1, n, width)
            for weight, slope in zip(inner[1:-1], slopes[1:-2], strict=True):
                tangent = nn.functional.linear(tangent.mul_(slope[rows, None, :]), weight)
            tangent = tangent.mul_(slopes[-2][rows, None, :]).flatten(1)
            div[rows] += torch.linalg.vecdot(nn.functional.linear(tangent, n_t), slopes[-1][rows])
    return div


def _check_inputs(t: Tensor, x: Tensor, dim: int) -> None:
    """Raise unless ``x`` is ``(batch, dim)`` and ``t`` is ``()`` or ``(batch,)``, both floating
    (metadata only: no value is read)."""
    check_floating(x, "x")
    check_floating(t, "t")
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"x must have shape (batch, {dim}), got {tuple(x.shape)}")
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] != x.shape[0]):
        raise ValueError(f"t must have shape () or ({x.shape[0]},), got {tuple(t.shape)}")


def _joined(x: Tensor, e: Tensor) -> Tensor:
    """[x, e] per sample (e with one row or one per sample)."""
    return torch.cat([x, e.expand(x.shape[0], -1)], dim=1)


def drop_labels(
    labels: Int[Tensor, " batch"],
    null_label: int,
    p: float,
    generator: torch.Generator | None = None,
) -> Int[Tensor, " batch"]:
    """Replace each label by ``null_label`` with probability ``p`` (classifier-free training)."""
    if not 0 <= p <= 1:
        raise ValueError(f"p must lie in [0, 1], got {p}")
    mask = torch.rand(labels.shape, generator=generator).to(labels.device) < p
    return torch.where(mask, torch.full_like(labels, null_label), labels)


@final
class TwoHeadMLP(nn.Module):
    """Two fields from one network: ``f(t, x[, y]) -> (head_a, head_b)``, each ``(B, dim)``.

    The model of :class:`SplitObjective` (heads v and η_z): an :class:`MLP` with
    ``2·dim`` outputs split in two, so both heads share the trunk and cost one evaluation.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 256,
        depth: int = 3,
        time_embedding: int = 64,
        num_classes: int | None = None,
        context_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.num_classes = num_classes
        self.context_dim = context_dim
        self.trunk = MLP(dim, hidden, depth, time_embedding, num_classes, context_dim)
        # Widen the output layer to 2·dim (the trunk's input stays dim + hidden).
        last = self.trunk.net[-1]
        assert isinstance(last, nn.Linear)
        self.trunk.net[-1] = nn.Linear(last.in_features, 2 * dim)

    def forward(
        self,
        t: Float[Tensor, " batch"] | Float[Tensor, ""],
        x: Float[Tensor, "batch dim"],
        condition: Condition = None,
    ) -> tuple[Float[Tensor, "batch dim"], Float[Tensor, "batch dim"]]:
        """Both heads, each of shape ``(batch, dim)``."""
        out: Tensor = self.trunk._apply_layers(t, x, condition)
        a, b = torch.split(out, self.dim, dim=1)
        return a, b
