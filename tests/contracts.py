"""Discovery of every concrete public class of an abstraction, for the contract tests.

A class is collected when it is listed in the ``__all__`` of the package or of one of its
public subpackages, subclasses the abstraction and is not abstract; so a new class is tested
as soon as it is exported, without editing a list. Classes whose constructor needs arguments
are built from a table in the test module; a class that is neither default-constructible nor
in the table fails the test with a message saying so.
"""

import importlib
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

from interpolants import _validation
from interpolants.nn import AverageVelocityMLP as AverageVelocityMLP

PUBLIC_MODULES = (
    "interpolants",
    "interpolants.interpolant",
    "interpolants.coupling",
    "interpolants.objective",
    "interpolants.fields",
    "interpolants.integrate",
    "interpolants.data",
    "interpolants.density",
    "interpolants.analytic",
    "interpolants.metrics",
    "interpolants.nn",
    "interpolants.train",
    "interpolants.cli",
)

T = TypeVar("T")


def concrete_subclasses(base: type[T]) -> list[type[T]]:
    """Every non-abstract public subclass of ``base`` (``base`` included if concrete)."""
    found: dict[str, type[T]] = {}
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isclass(obj) and issubclass(obj, base) and not inspect.isabstract(obj):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


def instances(
    classes: Iterable[type[T]], table: dict[type[Any], Callable[[], list[T]]]
) -> list[tuple[str, Callable[[], T]]]:
    """``(id, factory)`` pairs: the table's variants of a class, else its default instance."""
    out: list[tuple[str, Callable[[], T]]] = []
    for cls in classes:
        if cls in table:
            for k, _ in enumerate(table[cls]()):
                out.append((f"{cls.__name__}-{k}", lambda cls=cls, k=k: table[cls]()[k]))
        else:
            out.append((cls.__name__, lambda cls=cls: _default(cls)))
    return out


def _default(cls: type[T]) -> T:
    try:
        return cls()
    except TypeError as err:
        raise AssertionError(
            f"{cls.__name__} is not default-constructible: add it to the test's table of "
            f"constructor arguments ({err})"
        ) from err


def average_of(field: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    """An average velocity u(t, r, x) = field(t, x)·(1 + (r − t)) from a field f(t, x), for
    the objectives whose model is called as ``model(t, r, x)`` (the other checks unchanged)."""

    def average(t: Tensor, r: Tensor, x: Tensor) -> Tensor:
        return field(t, x) * (1 + (r - t).reshape(-1, *[1] * (x.ndim - 1)))

    return average


# the ops that force a device-to-host synchronisation on CUDA: reading a value
# (item, bool(), float(), int()), or an output whose size depends on the values
SYNCING_OPS = {
    torch.ops.aten._local_scalar_dense,
    torch.ops.aten.item,
    torch.ops.aten.is_nonzero,
    torch.ops.aten.nonzero,
    torch.ops.aten.masked_select,
    torch.ops.aten.equal,
}


class NoHostSync(TorchDispatchMode):
    """Raise on every op that would synchronise a CUDA device with the host, on any device:
    the CPU counterpart of ``torch.cuda.set_sync_debug_mode("error")``."""

    def __enter__(self):  # type: ignore[no-untyped-def]
        # production settings: the checked mode's value checks read the host by design
        self._checked = _validation.CHECK_VALUES
        _validation.CHECK_VALUES = False
        return super().__enter__()

    def __exit__(self, *exc):  # type: ignore[no-untyped-def]
        _validation.CHECK_VALUES = self._checked
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func.overloadpacket in SYNCING_OPS or _boolean_index(func, args):
            raise AssertionError(f"{func} synchronises with the host")
        return func(*args, **(kwargs or {}))


def _boolean_index(func: Any, args: tuple[Any, ...]) -> bool:
    """x[mask]: the output's size depends on the mask's values."""
    if func.overloadpacket not in (torch.ops.aten.index, torch.ops.aten.index_put):
        return False
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices)
