r"""Exact Gaussian-mixture test bed: closed-form marginals and fields of an interpolant.

For a spatially linear interpolant x_t = α x0 + β x1 + γ z with an *independent* coupling
between a Gaussian-mixture base ρ0 = Σᵢ pᵢ N(μ0ᵢ, C0ᵢ) and a Gaussian-mixture target
ρ1 = Σⱼ qⱼ N(μ1ⱼ, C1ⱼ), the time marginal is again a Gaussian mixture,

.. math::

    ρ_t = \sum_{ij} p_i q_j\, N(m_{ij}, C_{ij}),\quad
    m_{ij} = α μ0_i + β μ1_j,\quad C_{ij} = α^2 C0_i + β^2 C1_j + γ^2 I,

and, with the posterior weights :math:`w_{ij}(x) = p_i q_j N_{ij}(x) / ρ_t(x)`, the velocity,
score and denoiser are

.. math::

    b(t,x) = \sum_{ij} w_{ij}\,[\dot m_{ij} + \tfrac12 \dot C_{ij} C_{ij}^{-1}(x - m_{ij})],\qquad
    s(t,x) = -\sum_{ij} w_{ij}\, C_{ij}^{-1}(x - m_{ij}),

with :math:`\dot C_{ij} = 2(α\dot α C0_i + β\dot β C1_j + γ\dot γ I)`. The denoiser (paper sign
convention, η_z = E[z | x_t = x]) is η_z = −γ s for two-sided interpolants and
η_z = E[x0 | x_t = x] = −α s for one-sided ones (base N(0, I)). The mean velocity is
v = b + γγ̇ s (so that b = v − γγ̇ s). Only γγ̇ enters, so every field is finite at t = 0 and 1
whenever C0 and C1 are non-singular.

This is the ground truth every sampler, loss and likelihood in the library is tested against,
and a public feature: validate your own components on it.
"""

from ._exact import ExactInterpolantFields as ExactInterpolantFields

__all__ = [
    "ExactInterpolantFields",
]
