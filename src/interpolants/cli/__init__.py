r"""The ``interpolants`` command line, the named recipes it runs, and evaluation helpers.

The command has ``train``, ``sample``, ``nll`` and ``demo`` subcommands, each with ``--help``.
Bad arguments print one line (``interpolants: error: ...``) and exit with status 2, never a
traceback; so do runs that could not be used (refused before training, see
:meth:`RunConfig.validate`), missing, truncated, corrupt or foreign checkpoints, weights or
results that are not finite, and a training loss that is not finite. Runs live in a folder
holding ``config.json``, ``checkpoint.pt`` (atomic, checksummed, loaded with
``weights_only=True``; written every ``--checkpoint-every`` steps) and ``metrics.json``;
``interpolants train --resume RUN`` continues a run from its checkpoint to its ``--steps``,
on the same batches and noise as an uninterrupted run (the execution options ``--device``,
``--prefetch`` and ``--prefetch-backend`` may change, since every way of making the batches
gives the same ones). ``train`` refuses a folder that already holds a run.

A run is described by a :class:`RunConfig` of plain names and numbers, which :class:`Run`
maps to library objects (the tables below); the evaluation helpers (:func:`ode_samples`,
:func:`sde_samples`, :func:`w2_table`, :func:`heldout_nll`, :func:`plot_run`) take the fields
of a run and return numbers or tensors. Pictures need matplotlib (the ``plot`` extra).
"""

from ._config import BASES as BASES
from ._config import DATASETS as DATASETS
from ._config import GAMMAS as GAMMAS
from ._config import INTEGRATORS as INTEGRATORS
from ._config import INTERPOLANTS as INTERPOLANTS
from ._config import LR_SCHEDULES as LR_SCHEDULES
from ._config import OBJECTIVES as OBJECTIVES
from ._config import RunConfig as RunConfig
from ._config import load_config as load_config
from ._evaluate import heldout_nll as heldout_nll
from ._evaluate import ode_samples as ode_samples
from ._evaluate import plot_run as plot_run
from ._evaluate import sde_samples as sde_samples
from ._evaluate import w2_table as w2_table
from ._main import build_parser as build_parser
from ._main import main as main
from ._recipes import COUPLINGS as COUPLINGS
from ._recipes import Run as Run
from ._recipes import inpaint_halves as inpaint_halves
from ._recipes import load_run as load_run

__all__ = [
    "BASES",
    "COUPLINGS",
    "DATASETS",
    "GAMMAS",
    "INTEGRATORS",
    "INTERPOLANTS",
    "LR_SCHEDULES",
    "OBJECTIVES",
    "Run",
    "RunConfig",
    "build_parser",
    "heldout_nll",
    "inpaint_halves",
    "load_config",
    "load_run",
    "main",
    "ode_samples",
    "plot_run",
    "sde_samples",
    "w2_table",
]
