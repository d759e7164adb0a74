"""Minibatch couplings: pair a batch of x0 with a batch of x1.

Most keep both marginals; the ones that do not (weighted CFM's Gibbs weights, reflow's
model-generated x1, unbalanced and partial OT) say which marginal changes and how.

Every coupling is called as ``coupling(x0, x1, y0=None, y1=None, generator=..., return_plan=...)``
and returns a :class:`Pairing` on the inputs' device and dtype. A new coupling subclasses
:class:`Coupling` and implements :meth:`~Coupling.pair`, returning a :class:`PairIndices`.
The implementation modules are private; every public name is imported from here.
"""

from ._assignment import AssignmentSolver as AssignmentSolver
from ._assignment import LapjvSolver as LapjvSolver
from ._assignment import LapxSolver as LapxSolver
from ._assignment import NetworkSimplexSolver as NetworkSimplexSolver
from ._assignment import ScipySolver as ScipySolver
from ._auction import AuctionSolver as AuctionSolver
from ._auto import AutoAssignmentSolver as AutoAssignmentSolver
from ._base import PairIndices as PairIndices
from ._base import Pairing as Pairing
from ._base import PermutationCoupling as PermutationCoupling
from ._base import PlanCoupling as PlanCoupling
from ._certificate import CertifiedAssignment as CertifiedAssignment
from ._certificate import certify_assignment as certify_assignment
from ._conditional import DataDependentCoupling as DataDependentCoupling
from ._conditional import LabelConditionalCoupling as LabelConditionalCoupling
from ._cost import Cost as Cost
from ._cost import CustomCost as CustomCost
from ._cost import EuclideanCost as EuclideanCost
from ._cost import SquaredEuclideanCost as SquaredEuclideanCost
from ._entropic import SchrodingerBridgeCoupling as SchrodingerBridgeCoupling
from ._entropic import SinkhornCoupling as SinkhornCoupling
from ._matching import StableMatchingCoupling as StableMatchingCoupling
from ._reflow import ReflowCoupling as ReflowCoupling
from ._sinkhorn import SinkhornResult as SinkhornResult
from ._sinkhorn import sinkhorn as sinkhorn
from ._unbalanced import PartialOTCoupling as PartialOTCoupling
from ._unbalanced import UnbalancedOTCoupling as UnbalancedOTCoupling
from ._weighted import GibbsWeightedCoupling as GibbsWeightedCoupling

__all__ = [
    "AssignmentSolver",
    "AuctionSolver",
    "AutoAssignmentSolver",
    "CertifiedAssignment",
    "Cost",
    "CustomCost",
    "DataDependentCoupling",
    "EuclideanCost",
    "GibbsWeightedCoupling",
    "LabelConditionalCoupling",
    "LapjvSolver",
    "LapxSolver",
    "NetworkSimplexSolver",
    "PairIndices",
    "Pairing",
    "PartialOTCoupling",
    "PermutationCoupling",
    "PlanCoupling",
    "ReflowCoupling",
    "SchrodingerBridgeCoupling",
    "ScipySolver",
    "SinkhornCoupling",
    "SinkhornResult",
    "SquaredEuclideanCost",
    "StableMatchingCoupling",
    "UnbalancedOTCoupling",
    "certify_assignment",
    "sinkhorn",
]
