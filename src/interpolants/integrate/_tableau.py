r"""Butcher tableaux of explicit Runge–Kutta methods: the fixed-step rules, written once.

An explicit s-stage method with nodes c, coefficients a (strictly lower triangular) and
weights b maps x_k to

.. math::

    X_i = x_k + h\sum_{j<i} a_{ij} k_j,\qquad k_i = f(t_k + c_i h, X_i),\qquad
    x_{k+1} = x_k + h\sum_i b_i k_i.

An embedded pair adds the error weights e = b − b̂ of a lower-order solution b̂, so that
h Σ eᵢkᵢ estimates the local error (:class:`Dopri5`, :class:`Bosh3`). When the last stage is
evaluated at the solution itself (c_s = 1, a_{s·} = b, b_s = 0: "first same as last",
:attr:`Tableau.fsal`), it is the first stage of the next step.

References
----------
E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, Springer
(1993), §II.1 and §II.4. J. R. Dormand, P. J. Prince, *A family of embedded Runge–Kutta
formulae*, J. Comput. Appl. Math. 6 (1980), doi:10.1016/0771-050X(80)90013-3. P. Bogacki,
L. F. Shampine, *A 3(2) pair of Runge–Kutta formulas*, Appl. Math. Lett. 2 (1989),
doi:10.1016/0893-9659(89)90079-7.
"""

from dataclasses import dataclass
from functools import cached_property

__all__ = ["BOSH3", "CLASSICAL_RK4", "DOPRI5", "EULER", "HEUN", "MIDPOINT", "Tableau"]


@dataclass(frozen=True)
class Tableau:
    """The Butcher tableau of an explicit Runge–Kutta method.

    Attributes
    ----------
    c:
        The nodes c_i, one per stage (c₁ = 0).
    a:
        The coefficients: row i holds a_{i1}, …, a_{i,i−1} (the first row is empty).
    b:
        The weights b_i of the solution (summing to 1).
    error:
        For an embedded pair, the weights e_i = b_i − b̂_i of the error estimate; else
        ``None``.

    Example
    -------
    >>> from interpolants.integrate import Tableau
    >>> ralston = Tableau(c=(0.0, 2 / 3), a=((), (2 / 3,)), b=(0.25, 0.75))
    >>> ralston.stages
    2
    """

    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    error: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        s = len(self.c)
        if s < 1 or len(self.a) != s or len(self.b) != s:
            raise ValueError("c, a and b must have one entry (row) per stage")
        if self.c[0] != 0.0:
            raise ValueError(f"the first node must be 0 in an explicit method, got {self.c[0]}")
        for i, row in enumerate(self.a):
            if len(row) != i:
                raise ValueError(f"row {i} of a must hold {i} coefficients, got {len(row)}")
            if abs(sum(row) - self.c[i]) > 1e-12:
                raise ValueError(f"row {i} of a must sum to c[{i}] = {self.c[i]}")
        if abs(sum(self.b) - 1.0) > 1e-12:
            raise ValueError(f"the weights b must sum to 1, got {sum(self.b)}")
        if self.error is not None and len(self.error) != s:
            raise ValueError("error must have one weight per stage")

    @property
    def stages(self) -> int:
        """The number of stages (field evaluations per step)."""
        return len(self.c)

    @cached_property
    def input_only(self) -> frozenset[int]:
        """The stages whose derivative has zero weight in the solution and in the error
        estimate, so it enters only later stages' inputs."""
        err = self.error or (0.0,) * self.stages
        return frozenset(i for i in range(self.stages) if self.b[i] == 0.0 and err[i] == 0.0)

    @cached_property
    def fsal(self) -> bool:
        """First same as last: the last stage is evaluated at the solution (c = 1, its row of
        a equals b, and its own weight is 0), so it is the first stage of the next step."""
        s = self.stages
        return s > 1 and self.c[-1] == 1.0 and self.a[-1] == self.b[:-1] and self.b[-1] == 0.0


EULER = Tableau(c=(0.0,), a=((),), b=(1.0,))
"""Explicit Euler, order 1."""

HEUN = Tableau(c=(0.0, 1.0), a=((), (1.0,)), b=(0.5, 0.5))
"""Heun's method (explicit trapezoidal rule), order 2."""

MIDPOINT = Tableau(c=(0.0, 0.5), a=((), (0.5,)), b=(0.0, 1.0))
"""The explicit midpoint rule, order 2."""

CLASSICAL_RK4 = Tableau(
    c=(0.0, 0.5, 0.5, 1.0),
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
)
"""The classical fourth-order Runge–Kutta method."""

_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_DP_B = (*_DP_A[6], 0.0)
_DP_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)

DOPRI5 = Tableau(
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=_DP_A,
    b=_DP_B,
    error=tuple(b5 - b4 for b5, b4 in zip(_DP_B, _DP_B4, strict=True)),
)
"""Dormand–Prince 5(4): fifth-order solution, embedded fourth-order error estimate; the last
stage is the first of the next step (FSAL)."""

_BS_B = (2 / 9, 1 / 3, 4 / 9, 0.0)
_BS_B2 = (7 / 24, 1 / 4, 1 / 3, 1 / 8)

BOSH3 = Tableau(
    c=(0.0, 1 / 2, 3 / 4, 1.0),
    a=((), (1 / 2,), (0.0, 3 / 4), _BS_B[:3]),
    b=_BS_B,
    error=tuple(b3 - b2 for b3, b2 in zip(_BS_B, _BS_B2, strict=True)),
)
"""Bogacki–Shampine 3(2): third-order solution, embedded second-order error estimate (FSAL)."""
