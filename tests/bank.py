"""A bank of interpolants and Gaussian-mixture problems with known answers, shared by tests."""

import inspect
import math
from collections.abc import Callable

import torch

from contracts import concrete_subclasses
from interpolants import BrownianGamma, GaussianMixture, Interpolant, LinearInterpolant
from interpolants.interpolant import (
    CustomGamma,
    CustomInterpolant,
    EncoderDecoderInterpolant,
    MirrorInterpolant,
    OneSidedInterpolant,
    OneSidedLinearInterpolant,
    QuadraticGamma,
    SineSquaredGamma,
    TrigonometricInterpolant,
    VPInterpolant,
)


def _skewed(t: torch.Tensor) -> torch.Tensor:
    return 0.6 * t * (1 - t) * (1 + t)


def _custom_gamma() -> CustomGamma:
    return CustomGamma(_skewed)  # a module-level function, so the schedule pickles


GAMMAS: dict[str, Callable[[], object]] = {
    "none": lambda: None,
    "brownian": lambda: BrownianGamma(),
    "brownian0.3": lambda: BrownianGamma(a=0.3),
    "quadratic": lambda: QuadraticGamma(),
    "sinesq0.5": lambda: SineSquaredGamma(a=0.5),
    "custom": _custom_gamma,
}


def _cos2(t: torch.Tensor) -> torch.Tensor:
    return torch.cos(0.5 * math.pi * t) ** 2


def _sin2(t: torch.Tensor) -> torch.Tensor:
    return torch.sin(0.5 * math.pi * t) ** 2


def _custom_interpolant(gamma: object) -> Interpolant:
    return CustomInterpolant(_cos2, _sin2, gamma)  # type: ignore[arg-type]


# constructors of the families that need more than a γ schedule; short names for the ids
SPECIAL: dict[type, Callable[[object], Interpolant]] = {CustomInterpolant: _custom_interpolant}
SLUGS: dict[type, str] = {
    LinearInterpolant: "linear",
    TrigonometricInterpolant: "trig",
    EncoderDecoderInterpolant: "encdec",
    MirrorInterpolant: "mirror",
    CustomInterpolant: "custom",
    OneSidedLinearInterpolant: "onesided-linear",
    VPInterpolant: "vp",
}


def all_interpolants() -> dict[str, Interpolant]:
    """Every public family (discovered, so a new one is tested without editing a list) × every
    γ schedule it accepts; one-sided families take no γ."""
    out: dict[str, Interpolant] = {}
    for cls in concrete_subclasses(Interpolant):
        slug = SLUGS.get(cls, cls.__name__.lower())
        make = SPECIAL.get(cls, cls)
        if "gamma" not in inspect.signature(cls).parameters:
            out[slug] = make()  # type: ignore[call-arg]
            continue
        for gname, gamma in GAMMAS.items():
            try:
                out[f"{slug}-{gname}"] = make(gamma())  # type: ignore[call-arg]
            except ValueError:  # e.g. the mirror needs γ ≠ 0
                continue
    return out


def one_per_family() -> dict[str, Interpolant]:
    """One deterministic and one stochastic member of each family, and the one-sided ones."""
    return {
        "linear-none": LinearInterpolant(),
        "linear-brownian": LinearInterpolant(BrownianGamma()),
        "trig-none": TrigonometricInterpolant(),
        "trig-brownian": TrigonometricInterpolant(BrownianGamma()),
        "encdec-sinesq": EncoderDecoderInterpolant(),
        "mirror-brownian": MirrorInterpolant(BrownianGamma()),
        "custom-quadratic": _custom_interpolant(QuadraticGamma()),
        "onesided-linear": OneSidedLinearInterpolant(),
        "vp": VPInterpolant(),
    }


def two_mixtures(
    dtype: torch.dtype = torch.float64, dim: int = 2
) -> tuple[GaussianMixture, GaussianMixture]:
    """A 2-component anisotropic base and a 3-component target, fixed (no randomness)."""
    gen = torch.Generator().manual_seed(1234)
    a = torch.randn(2, dim, dim, generator=gen, dtype=torch.float64)
    c0 = 0.3 * a @ a.mT + 0.2 * torch.eye(dim, dtype=torch.float64)
    m0 = torch.randn(2, dim, generator=gen, dtype=torch.float64)
    base = GaussianMixture(torch.tensor([0.4, 0.6], dtype=torch.float64), m0, c0)
    m1 = 2.5 * torch.randn(3, dim, generator=gen, dtype=torch.float64)
    b = torch.randn(3, dim, dim, generator=gen, dtype=torch.float64)
    c1 = 0.1 * b @ b.mT + 0.1 * torch.eye(dim, dtype=torch.float64)
    target = GaussianMixture(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64), m1, c1)
    return base.to(dtype=dtype), target.to(dtype=dtype)


def problem(
    interpolant: Interpolant, dtype: torch.dtype = torch.float64, dim: int = 2
) -> tuple[GaussianMixture, GaussianMixture]:
    """The (base, target) pair suited to ``interpolant`` (N(0, I) base if one-sided)."""
    base, target = two_mixtures(dtype, dim)
    if isinstance(interpolant, OneSidedInterpolant):
        base = GaussianMixture.standard_normal(dim, dtype=dtype)
    return base, target
