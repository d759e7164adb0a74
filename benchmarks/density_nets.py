r"""A velocity network with random Fourier features of x for :mod:`density` (2-D toys).

:class:`FourierMLP` is the library's time-conditioned MLP applied to [x, sin(Bx), cos(Bx), e(t)]
with a fixed Gaussian matrix B (``features`` rows, entries N(0, scale²)), so that the first
layer can resolve sharp, periodic structure (the checkerboard's edges). Its
:meth:`~FourierMLP.forward_and_divergence` gives the exact divergence by forward-mode tangents:
with a₁ = W₁ˣ x + W₁ˢ sin(Bx) + W₁ᶜ cos(Bx) + W₁ᵉ e + b₁,

.. math::

    \frac{∂a₁}{∂x_i} = W₁ˣ e_i + W₁ˢ (\cos(Bx) ⊙ B_{:,i}) − W₁ᶜ (\sin(Bx) ⊙ B_{:,i}),

one tangent per input direction, carried through the SiLU layers
(T ← W_{l+1} (SiLU′(a_l) ⊙ T)); the divergence is Σᵢ of the i-th output of the i-th tangent.
The cost is ``dim`` Jacobian–vector products, cheap in 2-D.
"""

import torch
from torch import Tensor, nn

from interpolants.nn import SinusoidalTimeEmbedding


class FourierMLP(nn.Module):
    """f(t, x) = MLP([x, sin(Bx), cos(Bx)], e(t)) with SiLU layers."""

    def __init__(
        self,
        dim: int,
        hidden: int = 64,
        depth: int = 3,
        features: int = 32,
        scale: float = 2.0,
        seed: int = 0,
        time_embedding: int = 64,
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("freqs", scale * torch.randn(features, dim, generator=g))
        self.dim, self.features = dim, features
        self.time_embedding = SinusoidalTimeEmbedding(time_embedding)
        self.time_proj = nn.Linear(time_embedding, hidden)
        self.first = nn.Linear(dim + 2 * features + hidden, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth - 1))
        self.out = nn.Linear(hidden, dim)

    def _pre(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """First pre-activation and the Fourier features [sin(Bx), cos(Bx)]."""
        if t.ndim == 0:
            t = t.reshape(1)
        elif t.shape[0] > 1 and t.stride(0) == 0:
            t = t[:1]
        e = self.time_proj(self.time_embedding(t)).to(x.dtype)
        freqs: Tensor = self.freqs  # type: ignore[assignment]
        proj = x @ freqs.T
        trig = torch.cat([torch.sin(proj), torch.cos(proj)], 1)
        feats = torch.cat([x, trig], 1)
        w = self.first.weight
        n = feats.shape[1]
        if e.shape[0] == 1 < x.shape[0]:
            bias = nn.functional.linear(e, w[:, n:], self.first.bias)
            return torch.addmm(bias, feats, w[:, :n].T), trig
        return self.first(torch.cat([feats, e.expand(x.shape[0], -1)], 1)), trig

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        h, _ = self._pre(t, x)
        for layer in self.layers:
            h = layer(nn.functional.silu(h))
        out: Tensor = self.out(nn.functional.silu(h))
        return out

    def forward_and_divergence(self, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """f(t, x) and its exact divergence (forward-mode tangents, one per direction)."""
        h, trig = self._pre(t, x)
        d, m = self.dim, self.features
        batch, width = h.shape
        freqs: Tensor = self.freqs  # type: ignore[assignment]
        w = self.first.weight
        w_x, w_s, w_c = w[:, :d], w[:, d : d + m], w[:, d + m : d + 2 * m]
        # ∂a₁/∂x_i = W₁ˣ e_i + [sin, cos] · [−W₁ᶜ ⊙ B_{:,i}; W₁ˢ ⊙ B_{:,i}]ᵀ for all i at once
        fold = torch.cat(
            [-(w_c[None] * freqs.T[:, None, :]), w_s[None] * freqs.T[:, None, :]], 2
        )  # (dim, hidden, 2m)
        tangent = torch.addmm(w_x.T.reshape(1, d * width), trig, fold.reshape(d * width, 2 * m).T)
        tangent = tangent.view(batch * d, width)
        ones = h.new_ones(()).expand_as(h)
        layers = [*self.layers, self.out]
        for i, layer in enumerate(layers):
            slope = torch.ops.aten.silu_backward(ones, h)
            tangent = (tangent.view(batch, d, width) * slope[:, None, :]).view(batch * d, width)
            if i < len(layers) - 1:
                tangent = nn.functional.linear(tangent, layer.weight)
            h = layer(nn.functional.silu(h))
        # last layer: only the i-th output of the i-th tangent is needed
        div = (tangent.view(batch, d, width) * self.out.weight[None]).sum((1, 2))
        return h, div
