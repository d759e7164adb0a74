"""The scalar loss by a fused mean (``Objective.sample_mean_loss``): the same value and
gradient as the mean of the per-sample losses, taken only where no per-sample weight applies.

Tolerances: float64 throughout; the fused mean adds the same B·D squared errors as the mean of
per-sample means in another order, so the two agree to a few ulps of the loss (rtol 1e-12) and
the gradients, built from the same products, to rtol 1e-10.
"""

from typing import Any

import pytest
import torch

import interpolants.objective._regression as regression
from interpolants import (
    MLP,
    BrownianGamma,
    LinearInterpolant,
    Objective,
    SplitObjective,
    VelocityObjective,
)
from interpolants.interpolant import VPInterpolant
from interpolants.nn import TwoHeadMLP
from interpolants.objective import (
    BetaTime,
    DenoiserObjective,
    ImportanceWeighted,
    RegressionObjective,
    ScoreObjective,
    TargetObjective,
    check_prediction,
    mean_regression_loss,
    regression_loss,
)

F64 = torch.float64
CASES = [
    (VelocityObjective, LinearInterpolant(BrownianGamma()), False),
    (VelocityObjective, LinearInterpolant(), False),
    (DenoiserObjective, LinearInterpolant(BrownianGamma()), False),
    (ScoreObjective, VPInterpolant(), False),
    (SplitObjective, LinearInterpolant(BrownianGamma()), True),
    (TargetObjective, LinearInterpolant(), False),
]


def _model(two_heads: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    net = TwoHeadMLP(3, hidden=16, depth=2) if two_heads else MLP(3, hidden=16, depth=2)
    return net.to(F64)


def _loss_and_grads(objective: Objective, model: torch.nn.Module, fused: bool) -> tuple:
    gen = torch.Generator().manual_seed(5)
    x0 = torch.randn(64, 3, generator=gen, dtype=F64)
    x1 = torch.randn(64, 3, generator=gen, dtype=F64) + 2.0
    model.zero_grad(set_to_none=True)
    draw = torch.Generator().manual_seed(7)
    if fused:
        loss = objective.loss(model, x0, x1, generator=draw)
    else:
        loss = objective.per_sample_loss(model, x0, x1, generator=draw).mean()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("cls, interpolant, two_heads", CASES)
def test_the_fused_loss_equals_the_mean_of_the_per_sample_losses(
    cls: Any, interpolant: Any, two_heads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    fused_mean = regression.mean_regression_loss

    def counted(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls.append(prediction.shape)
        return fused_mean(prediction, target)

    monkeypatch.setattr(regression, "mean_regression_loss", counted)
    objective = cls(interpolant)
    model = _model(two_heads)
    value, grads = _loss_and_grads(objective, model, fused=True)
    assert len(calls) == (2 if two_heads else 1)  # one fused reduction per (m̂, y) pair
    reference, ref_grads = _loss_and_grads(objective, model, fused=False)
    torch.testing.assert_close(value, reference, rtol=1e-12, atol=0.0)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    "options",
    [
        {"antithetic": True},
        {"loss_weight": lambda t: 1.0 + t},
        {"time_sampler": ImportanceWeighted(BetaTime(2.0, 2.0))},
    ],
    ids=["antithetic", "loss_weight", "importance-weights"],
)
def test_per_sample_weights_take_the_per_sample_path(
    options: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a per-sample weight the fused mean would be wrong: the loss is then the mean of the
    weighted per-sample losses, and ``sample_mean_loss`` is not called."""
    objective = VelocityObjective(LinearInterpolant(BrownianGamma()), **options)

    def fail(*args: Any) -> None:
        raise AssertionError("sample_mean_loss called for a weighted draw")

    monkeypatch.setattr(VelocityObjective, "sample_mean_loss", fail)
    model = _model(False)
    value, grads = _loss_and_grads(objective, model, fused=True)
    reference, ref_grads = _loss_and_grads(objective, model, fused=False)
    torch.testing.assert_close(value, reference, rtol=1e-12, atol=0.0)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-14)


def test_an_objective_with_only_sample_losses_gets_the_plain_mean() -> None:
    class Absolute(Objective):  # not a regression: the default sample_mean_loss
        def sample_losses(self, predict: Any, sample: Any) -> torch.Tensor:
            v = check_prediction(predict(sample.t, sample.xt), sample.xt, "model")
            return (v - sample.velocity).abs().flatten(1).mean(1)

    objective = Absolute(LinearInterpolant())
    model = _model(False)
    value, _ = _loss_and_grads(objective, model, fused=True)
    reference, _ = _loss_and_grads(objective, model, fused=False)
    torch.testing.assert_close(value, reference, rtol=1e-12, atol=0.0)


def test_a_regression_objective_needs_its_pairs() -> None:
    class NoPairs(RegressionObjective):
        pass

    with pytest.raises(TypeError, match="regression_pairs"):
        NoPairs(LinearInterpolant())  # type: ignore[abstract]


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3, 3)])
def test_mean_regression_loss_is_the_batch_mean_of_regression_loss(shape: tuple) -> None:
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(shape, generator=gen, dtype=F64, requires_grad=True)
    y = torch.randn(shape, generator=gen, dtype=F64)
    fused = mean_regression_loss(m, y)
    (g_fused,) = torch.autograd.grad(fused, m)
    plain = regression_loss(m, y).mean()
    (g_plain,) = torch.autograd.grad(plain, m)
    torch.testing.assert_close(fused, plain, rtol=1e-13, atol=0.0)
    torch.testing.assert_close(g_fused, g_plain, rtol=1e-13, atol=0.0)
    assert float(fused.detach()) == pytest.approx(float(((m - y) ** 2).mean().detach()), rel=1e-13)


class _Penalised(VelocityObjective):  # type: ignore[misc]  # a downstream subclass of a final class
    """A subclass that changes the per-sample losses: its own override must decide the loss."""

    def sample_losses(self, predict: Any, sample: Any) -> torch.Tensor:
        v = check_prediction(predict(sample.t, sample.xt), sample.xt, "model")
        return regression_loss(v, sample.velocity) + 100.0 * v.square().flatten(1).mean(1)


class _Clamped(VelocityObjective):  # type: ignore[misc]
    def per_sample_loss(self, model: Any, x0: Any, x1: Any, **kwargs: Any) -> torch.Tensor:
        return super().per_sample_loss(model, x0, x1, **kwargs).clamp(max=0.1)


@pytest.mark.parametrize("cls", [_Penalised, _Clamped])
def test_an_override_below_the_fused_mean_decides_the_loss(
    cls: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fused mean stands for the per-sample losses of the class that defines it: a subclass
    overriding ``sample_losses`` or ``per_sample_loss`` gets the mean of its override, in
    :meth:`loss` and in the trainer's step, and the fused reduction is not called."""

    def fail(*args: Any) -> None:
        raise AssertionError("the fused mean was used past an override")

    model = _model(False)
    plain, _ = _loss_and_grads(VelocityObjective(LinearInterpolant()), model, fused=True)
    monkeypatch.setattr(regression, "mean_regression_loss", fail)
    objective = cls(LinearInterpolant())
    value, grads = _loss_and_grads(objective, model, fused=True)
    reference, ref_grads = _loss_and_grads(objective, model, fused=False)
    torch.testing.assert_close(value, reference, rtol=1e-12, atol=0.0)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-14)
    assert abs(float(value) - float(plain)) > 1e-3  # the override changed the value


def test_the_trainer_steps_on_the_override() -> None:
    """The trainer's loss (taken before its update) is the override's at the trainer's draw."""
    import copy

    from interpolants import Trainer
    from interpolants.data import Batch
    from interpolants.data._seed import derived_seed

    gen = torch.Generator().manual_seed(5)
    x0 = torch.randn(64, 3, generator=gen, dtype=F64)
    x1 = torch.randn(64, 3, generator=gen, dtype=F64) + 2.0
    for cls in (_Penalised, VelocityObjective):
        model = _model(False)
        before = copy.deepcopy(model)
        objective = cls(LinearInterpolant())
        trainer = Trainer(model, objective, [], ema_decay=None, seed=3)
        value = trainer.train_step(Batch(x0, x1))
        draw = torch.Generator().manual_seed(derived_seed(3, 0, trainer.rank, "noise"))
        expected = objective.per_sample_loss(before, x0, x1, generator=draw).mean()
        assert value == pytest.approx(float(expected.detach()), rel=1e-12)


class _Pairs(RegressionObjective):
    def __init__(self, pairs: Any) -> None:
        super().__init__(LinearInterpolant())
        self.pairs = pairs

    def regression_pairs(self, predict: Any, sample: Any) -> Any:
        return self.pairs(predict, sample)


@pytest.mark.parametrize(
    "pairs, message",
    [
        (lambda p, s: (), "returned no"),
        (
            lambda p, s: ((s.xt, s.velocity[:, :1]),),
            r"pair 0 .* one shape, got \[\(64, 3\), \(64, 1\)\]",
        ),
        (lambda p, s: ((s.xt, s.velocity), (s.xt,)), "pair 1"),
    ],
    ids=["empty", "shapes", "not-a-pair"],
)
def test_bad_regression_pairs_are_named(pairs: Any, message: str) -> None:
    gen = torch.Generator().manual_seed(5)
    x0, x1 = torch.randn(64, 3, generator=gen), torch.randn(64, 3, generator=gen)
    objective = _Pairs(pairs)
    for call in (objective.loss, objective.per_sample_loss):
        with pytest.raises(ValueError, match=message):
            call(lambda t, x: x, x0, x1)


def test_pairs_from_a_generator_are_accepted() -> None:
    objective = _Pairs(lambda p, s: ((m, y) for m, y in [(p(s.t, s.xt), s.velocity)]))
    x0, x1 = torch.zeros(4, 2), torch.ones(4, 2)
    assert float(objective.loss(lambda t, x: torch.zeros_like(x), x0, x1)) == 1.0
