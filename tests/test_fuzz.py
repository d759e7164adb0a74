"""A fuzz suite over the public entry points: nothing but documented errors, no silent NaN.

Two properties, checked as a hostile but honest user would try them:

* **valid input gives finite output** — every tensor (or number) returned is finite;
* **invalid input** (a wrong shape, dtype or type, NaN, a time outside [0, 1], mismatched
  dimensions, a negative size, an int where a float is meant) **raises only** a
  :class:`ValueError` or :class:`TypeError` (:class:`FloatingPointError` for a field that
  returns NaN inside an integration) **whose message names the argument**: never a raw
  ``RuntimeError``/``IndexError`` from deep inside torch, never a silently returned result.

Two layers. First, every public callable (discovered from the ``__all__`` lists, as the
contract tests do) and every public method of every default-constructible public class is
called with arguments of the wrong type. Second, hand-written hypothesis strategies drive the
important entry points with valid and corrupted inputs: interpolants, conversions, fields,
integrators, couplings, objectives, ``time_grid``, data sources and batches, metrics, the
density model, the trainer's constructor, the command line and the default networks.

Each probe records its outcome: for invalid input *clear* (a documented error naming the
argument), *cryptic* (another exception, or a message that does not name it) or *silent*
(accepted); for valid input *finite*, *non-finite* (silent) or *raised* (cryptic). Set
``INTERPOLANTS_FUZZ_REPORT=path.json`` to write the tally (entry points, cases, outcomes).
No case is expected to fail: a new cryptic or silent outcome fails its test.
"""

import importlib
import inspect
import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import interpolants.data as data_module
from bank import one_per_family
from contracts import PUBLIC_MODULES
from interpolants import (
    MLP,
    SDE,
    BrownianGamma,
    Dopri5,
    Euler,
    GaussianMixture,
    IndependentCoupling,
    LinearInterpolant,
    OTCoupling,
    PairedBatches,
    Trainer,
    VelocityObjective,
    _validation,
    time_grid,
)
from interpolants.analytic import ExactInterpolantFields
from interpolants.coupling import (
    SchrodingerBridgeCoupling,
    SinkhornCoupling,
    StableMatchingCoupling,
)
from interpolants.data import Moons, TensorData, ToyDataset
from interpolants.density import InterpolantFlow
from interpolants.fields import (
    ConvertedField,
    DenoiserFromScore,
    DenoiserFromVelocity,
    ScoreFromDenoiser,
    ScoreFromVelocity,
    TargetFromVelocity,
    VelocityFromDenoiser,
    VelocityFromMeanAndDenoiser,
    VelocityFromMeanAndScore,
    VelocityFromScore,
    VelocityFromSplit,
    VelocityFromTarget,
)
from interpolants.integrate import RK4, Bosh3, Heun, Midpoint
from interpolants.interpolant import OneSidedLinearInterpolant
from interpolants.metrics import (
    energy_distance,
    energy_test,
    mmd,
    path_statistics,
    sliced_wasserstein,
    wasserstein2,
)
from interpolants.nn import TwoHeadMLP, drop_labels
from interpolants.objective import DenoiserObjective

Field = Callable[[Tensor, Tensor], Tensor]
FUZZ = settings(max_examples=12, deadline=None, derandomize=True)
FEW = settings(max_examples=6, deadline=None, derandomize=True)


# --- the tally ----------------------------------------------------------------------------
class Tally:
    """Outcomes per entry point: ``(entry, kind) -> Counter(outcome)``."""

    def __init__(self) -> None:
        self.cases: dict[str, Counter[str]] = defaultdict(Counter)

    def record(self, entry: str, outcome: str) -> None:
        self.cases[entry][outcome] += 1

    def summary(self) -> dict[str, Any]:
        total: Counter[str] = Counter()
        for c in self.cases.values():
            total.update(c)
        return {
            "entry_points": len(self.cases),
            "cases": sum(total.values()),
            "outcomes": dict(sorted(total.items())),
            "per_entry": {k: dict(v) for k, v in sorted(self.cases.items())},
        }


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    path = os.environ.get("INTERPOLANTS_FUZZ_REPORT")
    if path:
        with open(path, "w") as fh:
            json.dump(TALLY.summary(), fh, indent=1)


def _finite(value: Any) -> bool:
    if isinstance(value, Tensor):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (tuple, list)):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if hasattr(value, "__dataclass_fields__"):
        return all(_finite(getattr(value, f)) for f in value.__dataclass_fields__)
    return True


def valid(entry: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on valid input: it must return, and everything it returns must be finite."""
    try:
        out = fn()
    except Exception as err:
        TALLY.record(entry, "valid:raised")
        raise AssertionError(f"{entry} raised on valid input: {err!r}") from err
    if not _finite(out):
        TALLY.record(entry, "valid:non-finite")
        raise AssertionError(f"{entry} returned non-finite values for valid input")
    TALLY.record(entry, "valid:finite")
    return out


DOCUMENTED: tuple[type[BaseException], ...] = (ValueError, TypeError)


def invalid(
    entry: str,
    fn: Callable[[], Any],
    *names: str,
    errors: tuple[type[BaseException], ...] = DOCUMENTED,
) -> BaseException:
    """Run ``fn`` on invalid input: it must raise one of ``errors`` naming one of ``names``."""
    try:
        out = fn()
    except errors as err:
        text = str(err)
        if any(name in text for name in names):
            TALLY.record(entry, "invalid:clear")
            return err
        TALLY.record(entry, "invalid:cryptic")
        raise AssertionError(f"{entry}: the message does not name {names}: {text!r}") from err
    except Exception as err:
        TALLY.record(entry, "invalid:cryptic")
        raise AssertionError(f"{entry} raised {type(err).__name__}: {err}") from err
    TALLY.record(entry, "invalid:silent")
    summary = "non-finite values" if not _finite(out) else type(out).__name__
    raise AssertionError(f"{entry} accepted invalid input {names} and returned {summary}")


# --- layer 1: every public callable, arguments of the wrong type --------------------------
class Poison:
    """An argument of a type that no public parameter accepts."""

    def __repr__(self) -> str:
        return "<poison>"


def _required(fn: Callable[..., Any]) -> list[inspect.Parameter] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    kinds = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
    return [p for p in sig.parameters.values() if p.default is p.empty and p.kind in kinds]


def _call_poisoned(fn: Callable[..., Any], params: list[inspect.Parameter]) -> Any:
    pos = [Poison() for p in params if p.kind != inspect.Parameter.KEYWORD_ONLY]
    kw = {p.name: Poison() for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY}
    return fn(*pos, **kw)


def _public_objects() -> dict[str, Any]:
    found: dict[str, Any] = {}
    seen: set[int] = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.ismodule(obj) or not callable(obj) or id(obj) in seen:
                continue
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue
            seen.add(id(obj))
            found[f"{module_name}.{attr}"] = obj
    return found


PUBLIC = _public_objects()


def _poisonable(name: str) -> bool:
    obj = PUBLIC[name]
    params = _required(obj)
    return bool(params) and not (inspect.isclass(obj) and inspect.isabstract(obj))


def _public_methods() -> list[tuple[str, str]]:
    """(class entry, method) for the library-defined public methods of every
    default-constructible public class that take a required argument."""
    out = []
    for name, obj in PUBLIC.items():
        if not inspect.isclass(obj) or inspect.isabstract(obj) or _required(obj):
            continue
        if getattr(obj, "_is_protocol", False):  # a protocol has no instances
            continue
        for method, fn in inspect.getmembers(obj, callable):
            if method.startswith("_") and method != "__call__":
                continue
            module = getattr(fn, "__module__", None) or ""
            if inspect.isclass(fn) or not module.startswith("interpolants"):
                continue
            params = _required(fn)
            if params and len(params) > 1:  # ``self`` and at least one argument
                out.append((name, method))
    return out


def test_the_public_surface_is_enumerated() -> None:
    # the discovery must see the whole public face, not a few names
    assert len(PUBLIC) > 150
    assert len(_public_methods()) > 100


@pytest.mark.parametrize("name", [n for n in PUBLIC if _poisonable(n)])
def test_public_callables_refuse_arguments_of_the_wrong_type(name: str) -> None:
    fn = PUBLIC[name]
    params = _required(fn)
    assert params is not None
    invalid(name, lambda: _call_poisoned(fn, params), *(p.name for p in params))


@pytest.mark.parametrize("name,method", _public_methods())
def test_public_methods_refuse_arguments_of_the_wrong_type(name: str, method: str) -> None:
    bound = getattr(PUBLIC[name](), method)
    params = _required(bound)
    assert params
    entry = f"{name}.{method}"
    invalid(entry, lambda: _call_poisoned(bound, params), *(p.name for p in params))


# --- strategies -----------------------------------------------------------------------------
DTYPES = st.sampled_from([torch.float32, torch.float64])
BATCH = st.integers(1, 4)
DIMS = st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple)
SEEDS = st.integers(0, 2**16)
INTERPOLANTS = one_per_family()


def _randn(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> Tensor:
    return torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@st.composite
def states(draw: st.DrawFn, min_batch: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """(x0, x1, z) of one shape and dtype."""
    b, dims, dtype, seed = draw(st.integers(min_batch, 4)), draw(DIMS), draw(DTYPES), draw(SEEDS)
    shape = (b, *dims)
    return (
        _randn(shape, dtype, seed),
        _randn(shape, dtype, seed + 1),
        _randn(shape, dtype, seed + 2),
    )


def _times(inner: bool = False) -> st.SearchStrategy[float]:
    lo, hi = (0.05, 0.95) if inner else (0.0, 1.0)
    return st.floats(lo, hi, allow_nan=False)


BAD_TIMES = st.one_of(  # outside [0, 1] also after rounding to float32
    st.floats(1.001, 1e6),
    st.floats(-1e6, -0.001),
    st.just(math.nan),
    st.just(math.inf),
)


# --- interpolants ---------------------------------------------------------------------------
@FUZZ
@given(
    name=st.sampled_from(sorted(INTERPOLANTS)), xs=states(), t=_times(), per_sample=st.booleans()
)
def test_interpolant_sample_is_finite(
    name: str, xs: tuple[Tensor, Tensor, Tensor], t: float, per_sample: bool
) -> None:
    interp = INTERPOLANTS[name]
    x0, x1, z = xs
    tt: float | Tensor = torch.full((x0.shape[0],), t, dtype=x0.dtype) if per_sample else t
    s = valid(f"{name}.sample", lambda: interp.sample(tt, x0, x1, z))
    valid(f"{name}.sample.fields", lambda: (s.xt, s.velocity, s.noise, s.mean_velocity))


SAMPLE_CORRUPTIONS = (
    "x1-shape",
    "x0-int",
    "x1-dtype",
    "t-range",
    "t-tensor-range",
    "t-shape",
    "t-int-tensor",
    "x0-0d",
    "z-shape",
    "t-string",
)


@pytest.mark.parametrize("bad", SAMPLE_CORRUPTIONS)
@FEW
@given(name=st.sampled_from(sorted(INTERPOLANTS)), xs=states(), bad_t=BAD_TIMES)
def test_interpolant_sample_refuses_bad_input(
    name: str, xs: tuple[Tensor, Tensor, Tensor], bad: str, bad_t: float
) -> None:
    interp = INTERPOLANTS[name]
    x0, x1, z = xs
    t: Any = 0.5
    named = {"x1-shape": "x1", "x0-int": "x0", "x1-dtype": "x1", "x0-0d": "x0", "z-shape": "z"}
    if bad == "x1-shape":
        x1 = torch.cat([x1, x1[:, :1]], dim=1)
    elif bad == "x0-int":
        x0 = x0.round().long()
    elif bad == "x1-dtype":
        x1 = x1.to(torch.float16)
    elif bad == "t-range":
        t = bad_t
    elif bad == "t-tensor-range":
        t = torch.full((x0.shape[0],), bad_t, dtype=x0.dtype)
    elif bad == "t-shape":
        t = torch.full((x0.shape[0] + 1,), 0.5, dtype=x0.dtype)
    elif bad == "t-int-tensor":
        t = torch.zeros(x0.shape[0], dtype=torch.long)
    elif bad == "x0-0d":
        x0, x1, z = x0.reshape(-1)[0], x1.reshape(-1)[0], z.reshape(-1)[0]
    elif bad == "z-shape":
        z = torch.cat([z, z[:, :1]], dim=1)
    elif bad == "t-string":
        t = "0.5"
    invalid(f"{name}.sample", lambda: interp.sample(t, x0, x1, z), named.get(bad, "t"))


def test_stochastic_sample_needs_z() -> None:
    x = torch.zeros(2, 2)
    invalid(
        "linear-brownian.sample", lambda: LinearInterpolant(BrownianGamma()).sample(0.5, x, x), "z"
    )


CONVERSIONS: dict[str, tuple[str, ...]] = {
    # method: (its state argument names after t) — one-sided only where marked
    "score_from_denoiser": ("denoiser",),
    "denoiser_from_score": ("score",),
    "velocity_from_mean_and_score": ("mean_velocity", "score"),
    "mean_velocity_from_velocity_and_score": ("velocity", "score"),
    "velocity_from_mean_and_denoiser": ("mean_velocity", "denoiser"),
    "target_from_velocity": ("x", "velocity"),
    "velocity_from_target": ("x", "target"),
    "score_from_velocity": ("x", "velocity"),
    "velocity_from_score": ("x", "score"),
    "denoiser_from_velocity": ("x", "velocity"),
    "velocity_from_denoiser": ("x", "denoiser"),
}


def _applicable(interp: Any, method: str) -> bool:
    if method in ("score_from_velocity", "velocity_from_score"):
        return bool(interp.one_sided)
    if method in ("denoiser_from_velocity", "velocity_from_denoiser"):
        return bool(interp.one_sided)
    if method in ("target_from_velocity", "velocity_from_target"):
        return not interp.is_stochastic
    if method == "score_from_denoiser":
        return bool(interp.has_noise)
    return True


CONVERSION_CASES = [
    (name, method)
    for name in sorted(INTERPOLANTS)
    for method in CONVERSIONS
    if _applicable(INTERPOLANTS[name], method)
]


@pytest.mark.parametrize("bad", ["none", "shape", "dtype", "t", "t-tensor"])
@FUZZ
@given(
    case=st.sampled_from(CONVERSION_CASES),
    xs=states(),
    t=_times(inner=True),
    bad_t=BAD_TIMES,
)
def test_conversions(
    case: tuple[str, str], xs: tuple[Tensor, Tensor, Tensor], t: float, bad: str, bad_t: float
) -> None:
    name, method = case
    fn = getattr(INTERPOLANTS[name], method)
    entry = f"{name}.{method}"
    args = [xs[0], xs[1]][: len(CONVERSIONS[method])]
    if bad == "none":
        valid(entry, lambda: fn(t, *args))
        valid(entry, lambda: fn(torch.full((xs[0].shape[0],), t, dtype=xs[0].dtype), *args))
        return
    last = CONVERSIONS[method][-1]
    if bad == "shape":
        # with a second state: a trailing shape that differs; alone: no batch dimension
        wider = torch.cat([args[-1], args[-1][:, :1]], dim=1)
        args[-1] = wider if len(args) > 1 else args[-1].reshape(-1)[0]
        invalid(entry, lambda: fn(t, *args), last)
    elif bad == "dtype":
        args[-1] = args[-1].round().long()
        invalid(entry, lambda: fn(t, *args), last)
    elif bad == "t":
        invalid(entry, lambda: fn(bad_t, *args), "t")
    else:
        tt = torch.full((xs[0].shape[0],), bad_t, dtype=xs[0].dtype)
        invalid(entry, lambda: fn(tt, *args), "t")


# --- fields ---------------------------------------------------------------------------------
def _field_cases() -> list[tuple[str, Callable[[Field], ConvertedField], str]]:
    """(id, build from one wrapped field, the wrapped field's argument name)."""
    one_sided = OneSidedLinearInterpolant()
    stochastic = LinearInterpolant(BrownianGamma())
    deterministic = LinearInterpolant()

    def split(f: Field) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]:
        return lambda t, x: (f(t, x), f(t, x))

    return [
        ("ScoreFromVelocity", lambda f: ScoreFromVelocity(one_sided, f), "velocity"),
        ("VelocityFromScore", lambda f: VelocityFromScore(one_sided, f), "score"),
        ("DenoiserFromVelocity", lambda f: DenoiserFromVelocity(one_sided, f), "velocity"),
        ("VelocityFromDenoiser", lambda f: VelocityFromDenoiser(one_sided, f), "denoiser"),
        ("ScoreFromDenoiser", lambda f: ScoreFromDenoiser(stochastic, f), "denoiser"),
        ("DenoiserFromScore", lambda f: DenoiserFromScore(stochastic, f), "score"),
        (
            "VelocityFromMeanAndScore",
            lambda f: VelocityFromMeanAndScore(stochastic, f, f),
            "mean_velocity",
        ),
        (
            "VelocityFromMeanAndDenoiser",
            lambda f: VelocityFromMeanAndDenoiser(stochastic, f, f),
            "mean_velocity",
        ),
        ("VelocityFromSplit", lambda f: VelocityFromSplit(stochastic, split(f)), "model"),
        ("TargetFromVelocity", lambda f: TargetFromVelocity(deterministic, f), "velocity"),
        ("VelocityFromTarget", lambda f: VelocityFromTarget(deterministic, f), "target"),
    ]


FIELD_CASES = _field_cases()


def test_the_field_table_holds_every_converted_field() -> None:
    from contracts import concrete_subclasses

    assert {c.__name__ for c in concrete_subclasses(ConvertedField)} == {c[0] for c in FIELD_CASES}


FIELD_CORRUPTIONS = ("wider", "batch", "flat", "not-a-tensor", "t-range", "t-shape")
FIELD_OUTPUTS: dict[str, Callable[[Tensor], Any]] = {
    "wider": lambda x: torch.cat([x, x], dim=-1),
    "batch": lambda x: torch.cat([x, x], dim=0),
    "flat": lambda x: x.reshape(-1)[:1] + 1.0,
    "not-a-tensor": lambda x: 1.0,
}


@FEW
@given(case=st.sampled_from(FIELD_CASES), xs=states(), t=_times(inner=True))
def test_fields_are_finite(
    case: tuple[str, Callable[[Field], ConvertedField], str],
    xs: tuple[Tensor, Tensor, Tensor],
    t: float,
) -> None:
    entry, build, _ = case
    x = xs[0]
    field = build(lambda t, x: -x)
    valid(entry, lambda: field(torch.full((x.shape[0],), t, dtype=x.dtype), x))


@pytest.mark.parametrize("bad", FIELD_CORRUPTIONS)
@pytest.mark.parametrize("case", FIELD_CASES, ids=[c[0] for c in FIELD_CASES])
def test_fields_refuse_bad_output_and_times(
    case: tuple[str, Callable[[Field], ConvertedField], str], bad: str
) -> None:
    entry, build, wrapped = case
    x = torch.randn(3, 2)
    make = FIELD_OUTPUTS.get(bad, lambda x: -x)
    field = build(lambda t, x: make(x))
    if bad == "t-range":
        invalid(entry, lambda: field(torch.full((3,), 1.5), x), "t")
    elif bad == "t-shape":
        invalid(entry, lambda: field(torch.full((4,), 0.5), x), "t")
    else:
        invalid(entry, lambda: field(torch.full((3,), 0.5), x), wrapped)


# --- integrators ----------------------------------------------------------------------------
INTEGRATORS = {
    "Euler": Euler,
    "Heun": Heun,
    "Midpoint": Midpoint,
    "RK4": RK4,
    "Dopri5": Dopri5,
    "Bosh3": Bosh3,
}


def _decay(t: Tensor, x: Tensor) -> Tensor:
    return -x


INTEGRATE_CORRUPTIONS = (
    "x-nan",
    "x-int",
    "x-0d",
    "grid-range",
    "grid-order",
    "grid-2d",
    "grid-int",
    "field-shape",
    "field-not-tensor",
    "field-nan",
    "save_at-off-grid",
    "dynamics-not-callable",
)


@pytest.mark.parametrize("bad", ("none", *INTEGRATE_CORRUPTIONS))
@FEW
@given(
    name=st.sampled_from(sorted(INTEGRATORS)),
    xs=states(),
    steps=st.integers(1, 6),
    backwards=st.booleans(),
)
def test_integrate(
    name: str, xs: tuple[Tensor, Tensor, Tensor], steps: int, backwards: bool, bad: str
) -> None:
    integrator = INTEGRATORS[name]()
    x = xs[0]
    grid = time_grid(steps, *((1.0, 0.0) if backwards else (0.0, 1.0)), dtype=x.dtype)
    entry = f"{name}.integrate"
    field: Any = _decay
    kwargs: dict[str, Any] = {}
    names = {"x-nan": "x", "x-int": "x", "x-0d": "x", "dynamics-not-callable": "dynamics"}
    errors = DOCUMENTED
    if bad == "none":
        valid(entry, lambda: integrator.integrate(_decay, x, grid, save_at=grid[-1:]))
        return
    if bad == "x-nan":
        x = x.clone()
        x.view(-1)[0] = math.nan
    elif bad == "x-int":
        x = x.long()
    elif bad == "x-0d":
        x = x.reshape(-1)[0]
    elif bad == "grid-range":
        grid = grid * 2.0
    elif bad == "grid-order":
        grid = grid.flip(0) if steps == 1 else grid[torch.tensor([0, 2, 1, *range(3, steps + 1)])]
        if steps == 1:
            grid = torch.stack([grid[0], grid[0]])
    elif bad == "grid-2d":
        grid = grid[None]
    elif bad == "grid-int":
        grid = torch.arange(steps + 1)
    elif bad == "field-shape":
        field = lambda t, x: torch.cat([x, x], -1)  # noqa: E731
    elif bad == "field-not-tensor":
        field = lambda t, x: 0.0  # noqa: E731
    elif bad == "field-nan":
        field = lambda t, x: x * math.nan  # noqa: E731
        errors = (FloatingPointError,)
    elif bad == "save_at-off-grid":
        kwargs["save_at"] = torch.tensor([0.5 / steps + 1e-3], dtype=x.dtype)
    elif bad == "dynamics-not-callable":
        field = 3.0
    expected = names.get(bad, bad.split("-")[0])
    if expected == "field":
        expected = "velocity"  # an ODE's field is its velocity
    invalid(entry, lambda: integrator.integrate(field, x, grid, **kwargs), expected, errors=errors)


@FEW
@given(xs=states(), bad=st.sampled_from(["none", "score-shape", "score-nan"]))
def test_sde_integration(xs: tuple[Tensor, Tensor, Tensor], bad: str) -> None:
    x = xs[0]
    grid = time_grid(4, dtype=x.dtype)
    gen = torch.Generator().manual_seed(0)
    score: Field = {
        "none": lambda t, x: -x,
        "score-shape": lambda t, x: torch.cat([x, x], -1),
        "score-nan": lambda t, x: x * math.nan,
    }[bad]
    dyn = SDE(_decay, score, 0.5)
    if bad == "none":
        valid("Euler.integrate(SDE)", lambda: Euler().integrate(dyn, x, grid, generator=gen))
        return
    errors = (FloatingPointError,) if bad == "score-nan" else DOCUMENTED
    invalid(
        "Euler.integrate(SDE)",
        lambda: Euler().integrate(dyn, x, grid, generator=gen),
        "score",
        errors=errors,
    )


# --- time_grid ------------------------------------------------------------------------------
@FUZZ
@given(steps=st.integers(1, 50), start=_times(), end=_times(), dtype=DTYPES)
def test_time_grid_is_finite_and_monotone(steps: int, start: float, end: float, dtype: Any) -> None:
    if start == end:
        invalid("time_grid", lambda: time_grid(steps, start, end, dtype=dtype), "start", "end")
        return
    g = valid("time_grid", lambda: time_grid(steps, start, end, dtype=dtype))
    assert g.shape == (steps + 1,) and g.dtype == dtype


@FUZZ
@given(
    steps=st.one_of(st.integers(-5, 0), st.floats(0.5, 5.0), st.just(True), st.just("4")),
    bad_t=BAD_TIMES,
    which=st.sampled_from(["steps", "start", "end", "dtype"]),
)
def test_time_grid_refuses_bad_input(steps: Any, bad_t: float, which: str) -> None:
    args: dict[str, Any] = {"steps": 4, "start": 0.0, "end": 1.0, "dtype": None}
    args[which] = {"steps": steps, "start": bad_t, "end": bad_t, "dtype": torch.int64}[which]
    dtype = args.pop("dtype")
    invalid("time_grid", lambda: time_grid(**args, dtype=dtype), which)


# --- couplings ------------------------------------------------------------------------------
COUPLINGS: dict[str, Callable[[], Any]] = {
    "independent": IndependentCoupling,
    "ot": OTCoupling,
    "sinkhorn": SinkhornCoupling,
    "sb": lambda: SchrodingerBridgeCoupling(sigma=0.5),
    "stable": StableMatchingCoupling,
}


@FEW
@given(name=st.sampled_from(sorted(COUPLINGS)), xs=states(min_batch=2))
def test_couplings_pair_finite(name: str, xs: tuple[Tensor, Tensor, Tensor]) -> None:
    x0, x1, _ = xs
    coupling = COUPLINGS[name]()
    gen = torch.Generator().manual_seed(0)
    pairing = valid(f"{name}.__call__", lambda: coupling(x0, x1, generator=gen))
    assert pairing.x0.shape == x0.shape


@pytest.mark.parametrize("name", sorted(COUPLINGS))
@pytest.mark.parametrize("bad", ["dims", "int", "dtype"])
def test_couplings_refuse_mismatched_input(name: str, bad: str) -> None:
    x0, x1 = torch.randn(4, 2), torch.randn(4, 2)
    if bad == "dims":
        x1 = torch.randn(4, 3)
    elif bad == "int":
        x0 = x0.long()
    else:
        x1 = x1.double()
    invalid(f"{name}.__call__", lambda: COUPLINGS[name]()(x0, x1), "x0" if bad == "int" else "x1")


@pytest.mark.parametrize("name", sorted(COUPLINGS))
def test_couplings_name_a_nan_batch(name: str) -> None:
    x0, x1 = torch.randn(4, 2), torch.randn(4, 2)
    x0[1, 0] = math.nan
    invalid(f"{name}.__call__", lambda: COUPLINGS[name]()(x0, x1), "x0")


@pytest.mark.parametrize("name", ["SquaredEuclideanCost", "EuclideanCost"])
def test_costs_name_an_integer_batch(name: str) -> None:
    from interpolants import coupling

    cost = getattr(coupling, name)()
    x = torch.ones(3, 2, dtype=torch.long)
    invalid(f"{name}.matrix", lambda: cost.matrix(x, x), "x0")


# --- objectives -----------------------------------------------------------------------------
class _Linear(nn.Module):
    def __init__(self, dim: int, out: int | None = None) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, out or dim)

    def forward(self, t: Tensor, x: Tensor, condition: Any = None) -> Tensor:
        return self.lin(x) * t.reshape(-1, 1)


@pytest.mark.parametrize("bad", ["none", "model-shape", "x1-dims", "t-range", "model-not-tensor"])
@FEW
@given(xs=states(), objective=st.sampled_from(["velocity", "denoiser"]), bad_t=BAD_TIMES)
def test_objective_loss(
    xs: tuple[Tensor, Tensor, Tensor], objective: str, bad: str, bad_t: float
) -> None:
    x0, x1, _ = (v.reshape(v.shape[0], -1) for v in xs)
    dim = x0.shape[1]
    obj = (
        VelocityObjective(LinearInterpolant())
        if objective == "velocity"
        else DenoiserObjective(LinearInterpolant(BrownianGamma()))
    )
    model: Any = _Linear(dim).to(x0.dtype)
    entry = f"{type(obj).__name__}.loss"
    gen = torch.Generator().manual_seed(0)
    kwargs: dict[str, Any] = {"generator": gen}
    if bad == "none":
        valid(entry, lambda: obj.loss(model, x0, x1, **kwargs))
        return
    name = {"model-shape": "model", "x1-dims": "x1", "model-not-tensor": "model"}.get(bad, "t")
    if bad == "model-shape":
        model = _Linear(dim, dim + 1).to(x0.dtype)
    elif bad == "model-not-tensor":
        model = lambda t, x, condition=None: 1.0  # noqa: E731
    elif bad == "x1-dims":
        x1 = torch.cat([x1, x1], dim=1)
    else:
        kwargs["t"] = bad_t
    invalid(entry, lambda: obj.loss(model, x0, x1, **kwargs), name)


@pytest.mark.parametrize("name", ["UniformTime", "LogitNormalTime"])
def test_time_samplers_refuse_negative_sizes(name: str) -> None:
    from interpolants import objective

    sampler = getattr(objective, name)()
    invalid(f"{name}.sample", lambda: sampler.sample(-1), "n")


@pytest.mark.parametrize("method", ["density", "weight"])
def test_time_samplers_refuse_integer_times(method: str) -> None:
    from interpolants.objective import UniformTime

    fn = getattr(UniformTime(), method)
    invalid(f"UniformTime.{method}", lambda: fn(torch.ones(3, dtype=torch.long)), "t")


# --- data -----------------------------------------------------------------------------------
TOYS = sorted(
    n
    for n in data_module.__all__
    if inspect.isclass(getattr(data_module, n))
    and issubclass(getattr(data_module, n), ToyDataset)
    and not inspect.isabstract(getattr(data_module, n))
)


@FUZZ
@given(name=st.sampled_from(TOYS), n=st.integers(1, 64), seed=SEEDS)
def test_toy_datasets_sample_finite(name: str, n: int, seed: int) -> None:
    toy = getattr(data_module, name)()
    gen = torch.Generator().manual_seed(seed)
    x = valid(f"{name}.sample", lambda: toy.sample(n, gen))
    assert x.shape == (n, 2)


@FUZZ
@given(
    name=st.sampled_from([*TOYS, "GaussianMixture"]),
    n=st.one_of(st.integers(-10, -1), st.floats(0.5, 5.0), st.just("3"), st.just(None)),
)
def test_sources_refuse_bad_sizes(name: str, n: Any) -> None:
    source = (
        GaussianMixture.standard_normal(2)
        if name == "GaussianMixture"
        else getattr(data_module, name)()
    )
    invalid(f"{name}.sample", lambda: source.sample(n), "n")


@FUZZ
@given(
    base_dim=st.integers(1, 4),
    target=st.sampled_from(["moons", "mixture3", "tensor3"]),
    batch_size=st.integers(1, 8),
)
def test_paired_batches_check_dimensions(base_dim: int, target: str, batch_size: int) -> None:
    base = GaussianMixture.standard_normal(base_dim)
    tgt: Any = {
        "moons": Moons(),
        "mixture3": GaussianMixture.standard_normal(3),
        "tensor3": TensorData(torch.randn(10, 3)),
    }[target]
    tdim = 2 if target == "moons" else 3
    gen = torch.Generator().manual_seed(0)
    if base_dim == tdim:
        batch = valid("PairedBatches", lambda: PairedBatches(base, tgt, batch_size)(gen))
        assert batch.x0.shape == batch.x1.shape == (batch_size, tdim)
    else:
        invalid("PairedBatches", lambda: PairedBatches(base, tgt, batch_size), "base", "target")


@FUZZ
@given(batch_size=st.one_of(st.integers(-5, 0), st.floats(0.5, 4.0), st.just("8")))
def test_paired_batches_refuse_bad_batch_size(batch_size: Any) -> None:
    base = GaussianMixture.standard_normal(2)
    invalid("PairedBatches", lambda: PairedBatches(base, Moons(), batch_size), "batch_size")


@pytest.mark.parametrize("bad", ["not-a-tensor", "empty", "int-data", "labels-shape", "nan"])
def test_tensor_data_refuses_bad_input(bad: str) -> None:
    data: Any = torch.randn(6, 2)
    labels: Any = None
    name = "data"
    if bad == "not-a-tensor":
        data = [[0.0, 1.0]]
    elif bad == "empty":
        data = torch.zeros(0, 2)
    elif bad == "int-data":
        data = torch.ones(6, 2, dtype=torch.long)
    elif bad == "labels-shape":
        labels, name = torch.zeros(5, dtype=torch.long), "labels"
    else:
        data[2, 1] = math.nan
    invalid("TensorData", lambda: TensorData(data, labels), name)


# --- metrics --------------------------------------------------------------------------------
METRICS: dict[str, Callable[[Tensor, Tensor], Any]] = {
    "wasserstein2": wasserstein2,
    "energy_distance": energy_distance,
    "energy_test": lambda x, y: energy_test(x, y, permutations=9, generator=torch.Generator()),
    "sliced_wasserstein": lambda x, y: sliced_wasserstein(
        x, y, projections=8, generator=torch.Generator()
    ),
    "mmd": mmd,
}


@pytest.mark.parametrize("bad", ["none", "nan", "dims", "int", "one-sample", "0d"])
@FEW
@given(
    name=st.sampled_from(sorted(METRICS)),
    n=st.integers(2, 6),
    m=st.integers(2, 6),
    dims=DIMS,
    dtype=DTYPES,
    seed=SEEDS,
)
def test_metrics(
    name: str, n: int, m: int, dims: tuple[int, ...], dtype: Any, seed: int, bad: str
) -> None:
    fn = METRICS[name]
    x, y = _randn((n, *dims), dtype, seed), _randn((m, *dims), dtype, seed + 1)
    if bad == "none":
        valid(name, lambda: fn(x, y))
        return
    which = "y"
    if bad == "nan":
        y = y.clone()
        y.view(-1)[-1] = math.nan
    elif bad == "dims":
        y = torch.cat([y, y], dim=-1)
    elif bad == "int":
        y = y.long()
    elif bad == "one-sample":
        y = y[:1]
    else:
        y = y.reshape(-1)[0]
    invalid(name, lambda: fn(x, y), which)


@FEW
@given(xs=states(), bad=st.sampled_from(["none", "steps", "x0-nan"]))
def test_path_statistics(xs: tuple[Tensor, Tensor, Tensor], bad: str) -> None:
    x0 = xs[0]
    if bad == "none":
        valid("path_statistics", lambda: path_statistics(_decay, x0, steps=4))
    elif bad == "steps":
        invalid("path_statistics", lambda: path_statistics(_decay, x0, steps=0), "steps")
    else:
        x0 = x0.clone()
        x0.view(-1)[0] = math.nan
        invalid("path_statistics", lambda: path_statistics(_decay, x0, steps=4), "x0")


# --- the exact test bed ---------------------------------------------------------------------
@FEW
@given(
    t=_times(inner=True),
    b=BATCH,
    seed=SEEDS,
    bad=st.sampled_from(["none", "dims", "t-range", "nan", "int"]),
    bad_t=BAD_TIMES,
)
def test_exact_fields(t: float, b: int, seed: int, bad: str, bad_t: float) -> None:
    g0 = GaussianMixture.standard_normal(2, dtype=torch.float64)
    g1 = GaussianMixture.isotropic(
        torch.ones(2, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64), 0.5
    )
    exact = ExactInterpolantFields(LinearInterpolant(BrownianGamma()), g0, g1)
    x = _randn((b, 2), torch.float64, seed)
    methods = ("velocity", "score", "denoiser", "log_prob")
    xn = x.clone()
    xn[0, 0] = math.nan
    for method in methods:
        fn = getattr(exact, method)
        entry = f"ExactInterpolantFields.{method}"
        if bad == "none":
            valid(entry, lambda fn=fn: fn(t, x))
        elif bad == "dims":
            invalid(entry, lambda fn=fn: fn(t, torch.cat([x, x], -1)), "x")
        elif bad == "t-range":
            invalid(entry, lambda fn=fn: fn(bad_t, x), "t")
        elif bad == "int":
            invalid(entry, lambda fn=fn: fn(t, x.long()), "x")
        else:
            invalid(entry, lambda fn=fn: fn(t, xn), "x")


# --- networks -------------------------------------------------------------------------------
@FUZZ
@given(
    dim=st.integers(1, 4),
    b=BATCH,
    seed=SEEDS,
    two_heads=st.booleans(),
    bad=st.sampled_from(["none", "x-dims", "t-shape", "x-1d"]),
)
def test_networks(dim: int, b: int, seed: int, two_heads: bool, bad: str) -> None:
    torch.manual_seed(seed)
    net: nn.Module = (
        TwoHeadMLP(dim, hidden=8, depth=1) if two_heads else MLP(dim, hidden=8, depth=1)
    )
    entry = type(net).__name__
    x = torch.randn(b, dim)
    t = torch.rand(b)
    if bad == "none":
        valid(entry, lambda: net(t, x))
    elif bad == "x-dims":
        invalid(entry, lambda: net(t, torch.randn(b, dim + 1)), "x")
    elif bad == "x-1d":
        invalid(entry, lambda: net(t, torch.randn(dim)), "x")
    else:
        invalid(entry, lambda: net(torch.rand(b + 1), x), "t")


@pytest.mark.parametrize("bad", ["dim", "hidden", "depth"])
def test_mlp_refuses_bad_sizes(bad: str) -> None:
    kwargs: dict[str, Any] = {"dim": 2, "hidden": 8, "depth": 1, bad: 0}
    invalid("MLP", lambda: MLP(**kwargs), bad)


@pytest.mark.parametrize("p", [-0.1, 1.5, math.nan])
def test_drop_labels_refuses_bad_probabilities(p: float) -> None:
    invalid("drop_labels", lambda: drop_labels(torch.arange(4), 9, p), "p")


# --- the density model ----------------------------------------------------------------------
class _Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.a * x


def _flow() -> InterpolantFlow:
    base = GaussianMixture.standard_normal(2, dtype=torch.float64)
    return InterpolantFlow(_Scale(), base, sampler=RK4(), likelihood=RK4(), steps=4)


@FEW
@given(b=BATCH, seed=SEEDS)
def test_density_log_prob_and_sample_are_finite(b: int, seed: int) -> None:
    dist = _flow()()
    x = _randn((b, 2), torch.float64, seed)
    valid("InterpolantDistribution.log_prob", lambda: dist.log_prob(x))
    valid("InterpolantDistribution.sample", lambda: dist.sample((b,)))


@pytest.mark.parametrize("bad", ["event", "int"])
def test_density_log_prob_refuses_bad_values(bad: str) -> None:
    dist = _flow()()
    x = torch.randn(3, 3, dtype=torch.float64) if bad == "event" else torch.ones(3, 2).long()
    invalid("InterpolantDistribution.log_prob", lambda: dist.log_prob(x), "value")


def test_density_log_prob_names_a_nan_value() -> None:
    dist = _flow()()
    x = torch.randn(3, 2, dtype=torch.float64)
    x[0, 0] = math.nan
    invalid("InterpolantDistribution.log_prob", lambda: dist.log_prob(x), "value")


@pytest.mark.parametrize("bad", ["steps", "chunk", "velocity"])
def test_density_flow_refuses_bad_arguments(bad: str) -> None:
    base = GaussianMixture.standard_normal(2)
    kwargs: dict[str, Any] = {bad: 0} if bad != "velocity" else {}
    velocity: Any = (lambda t, x: x) if bad == "velocity" else _Scale()
    invalid("InterpolantFlow", lambda: InterpolantFlow(velocity, base, **kwargs), bad)


# --- the trainer ----------------------------------------------------------------------------
TRAINER_CORRUPTIONS: dict[str, Any] = {
    "lr": -1e-3,
    "ema_decay": 1.5,
    "grad_clip": -1.0,
    "label_dropout": 2.0,
    "accumulate": 0,
    "autocast": torch.int32,
}


@pytest.mark.parametrize("name", sorted(TRAINER_CORRUPTIONS))
def test_trainer_refuses_bad_arguments(name: str) -> None:
    batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 8)
    model = MLP(2, hidden=8, depth=1)
    objective = VelocityObjective(LinearInterpolant())
    kwargs = {name: TRAINER_CORRUPTIONS[name]}
    invalid("Trainer", lambda: Trainer(model, objective, batches, **kwargs), name)


@pytest.mark.parametrize("bad", ["model", "objective", "batches"])
def test_trainer_refuses_arguments_of_the_wrong_kind(bad: str) -> None:
    args: dict[str, Any] = {
        "model": MLP(2, hidden=8, depth=1),
        "objective": VelocityObjective(LinearInterpolant()),
        "batches": PairedBatches(GaussianMixture.standard_normal(2), Moons(), 8),
    }
    args[bad] = 3.0
    invalid("Trainer", lambda: Trainer(**args), bad)


def test_trainer_reports_a_model_of_the_wrong_dimension() -> None:
    batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 8)
    trainer = Trainer(MLP(3, hidden=8, depth=1), VelocityObjective(LinearInterpolant()), batches)
    invalid("Trainer.step", trainer.step, "x", "model")


def test_trainer_step_is_finite() -> None:
    batches = PairedBatches(GaussianMixture.standard_normal(2), Moons(), 8)
    trainer = Trainer(MLP(2, hidden=8, depth=1), VelocityObjective(LinearInterpolant()), batches)
    valid("Trainer.step", trainer.step)


# --- the command line -----------------------------------------------------------------------
CLI_CASES = [
    (["train", "--steps", "0"], "--steps"),
    (["train", "--steps", "-3"], "--steps"),
    (["train", "--steps", "1.5"], "--steps"),
    (["train", "--data", "nope"], "--data"),
    (["train", "--coupling", "nope"], "--coupling"),
    (["train", "--batch", "0"], "--batch"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--hidden", "0"], "--hidden"),
    (["train", "--depth", "-1"], "--depth"),
    (["train", "--ema", "1.5"], "--ema"),
    (["train", "--gamma-scale", "-1"], "--gamma-scale"),
    (["train", "--coupling-reg", "-0.5"], "--coupling-reg"),
    (["sample", "--run", "{tmp}/missing"], "missing"),
    (["sample", "--run", "{tmp}", "--eps", "-1"], "--eps"),
    (["sample", "--run", "{tmp}", "--n", "0"], "--n"),
    (["nll", "--run", "{tmp}/missing"], "missing"),
]


@pytest.mark.parametrize(
    "argv,flag",
    [
        pytest.param(
            argv,
            flag,
            id=" ".join(argv).replace("{tmp}", "TMP"),
        )
        for argv, flag in CLI_CASES
    ],
)
def test_cli_refuses_bad_arguments(
    argv: list[str], flag: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from interpolants.cli import main

    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if args[0] == "train":
        args += ["--out", str(tmp_path / "run"), "--quiet"]
    entry = f"cli {args[0]}"
    try:
        code: Any = main(args)
    except SystemExit as exit_:
        code = exit_.code
    except Exception as err:
        TALLY.record(entry, "invalid:cryptic")
        raise AssertionError(f"{entry} raised {err!r}") from err
    err_text = capsys.readouterr().err
    if code != 2:
        TALLY.record(entry, "invalid:silent")
        raise AssertionError(f"{args} exited {code}, expected 2")
    last = err_text.strip().splitlines()[-1] if err_text.strip() else ""
    if flag not in last:
        TALLY.record(entry, "invalid:cryptic")
        raise AssertionError(f"{args}: the message does not name {flag}: {err_text!r}")
    TALLY.record(entry, "invalid:clear")
    assert not (tmp_path / "run").exists()


# --- checked mode on ------------------------------------------------------------------------
def test_the_suite_runs_in_checked_mode() -> None:
    # the time-range checks of per-step code are part of what is fuzzed here
    assert _validation.CHECK_VALUES
