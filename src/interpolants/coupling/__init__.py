"""Minibatch couplings: pair a batch of x0 with a batch of x1, keeping both marginals.

Every coupling is called as ``coupling(x0, x1, y0=None, y1=None, generator=..., return_plan=...)``
and returns a :class:`Pairing` on the inputs' device and dtype (see :mod:`.base`).
"""

from .assignment import AssignmentSolver as AssignmentSolver
from .assignment import AutoAssignmentSolver as AutoAssignmentSolver
from .assignment import LapjvSolver as LapjvSolver
from .assignment import LapxSolver as LapxSolver
from .assignment import NetworkSimplexSolver as NetworkSimplexSolver
from .assignment import ScipySolver as ScipySolver
from .base import Coupling as Coupling
from .base import IndependentCoupling as IndependentCoupling
from .base import Pairing as Pairing
from .base import PermutationCoupling as PermutationCoupling
from .base import PlanCoupling as PlanCoupling
from .conditional import DataDependentCoupling as DataDependentCoupling
from .conditional import LabelConditionalCoupling as LabelConditionalCoupling
from .cost import Cost as Cost
from .cost import CustomCost as CustomCost
from .cost import EuclideanCost as EuclideanCost
from .cost import SquaredEuclideanCost as SquaredEuclideanCost
from .entropic import SchrodingerBridgeCoupling as SchrodingerBridgeCoupling
from .entropic import SinkhornCoupling as SinkhornCoupling
from .entropic import SinkhornResult as SinkhornResult
from .entropic import sinkhorn as sinkhorn
from .exact import OTCoupling as OTCoupling
from .matching import StableMatchingCoupling as StableMatchingCoupling
from .unbalanced import PartialOTCoupling as PartialOTCoupling
from .unbalanced import UnbalancedOTCoupling as UnbalancedOTCoupling

__all__ = [
    "AssignmentSolver",
    "AutoAssignmentSolver",
    "Cost",
    "Coupling",
    "CustomCost",
    "DataDependentCoupling",
    "EuclideanCost",
    "IndependentCoupling",
    "LabelConditionalCoupling",
    "LapjvSolver",
    "LapxSolver",
    "NetworkSimplexSolver",
    "OTCoupling",
    "Pairing",
    "PartialOTCoupling",
    "PermutationCoupling",
    "PlanCoupling",
    "SchrodingerBridgeCoupling",
    "ScipySolver",
    "SinkhornCoupling",
    "SinkhornResult",
    "SquaredEuclideanCost",
    "StableMatchingCoupling",
    "UnbalancedOTCoupling",
    "sinkhorn",
]
