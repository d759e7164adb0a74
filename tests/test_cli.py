"""The ``interpolants`` command line: help, one-line errors, and a tiny train → sample → nll."""

import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from interpolants.cli import Run, RunConfig, load_run, main
from interpolants.data import TensorData
from interpolants.train import load_checkpoint, save_checkpoint

TINY = ["--steps", "30", "--batch", "64", "--hidden", "32", "--depth", "2", "--quiet"]


@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["nll"], ["demo"]])
def test_help_for_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    assert "usage: interpolants" in capsys.readouterr().out


def test_bad_arguments_give_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--coupling", "magic"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'magic'" in err and "Traceback" not in err
    assert main(["train", "--lr", "-1", "--out", "/tmp/never"]) == 2
    assert capsys.readouterr().err.strip() == "interpolants: error: --lr must be positive, got -1.0"
    assert main(["sample", "--run", "/nonexistent/run"]) == 2
    assert capsys.readouterr().err.startswith("interpolants: error:")


def test_train_sample_nll_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TINY]) == 0
    assert {p.name for p in run.iterdir()} == {"config.json", "checkpoint.pt", "metrics.json"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 30
    assert main(["sample", "--run", str(run), "--n", "200", "--steps", "4"]) == 0
    samples = torch.load(run / "samples.pt", weights_only=True)
    assert samples.shape == (200, 2) and torch.isfinite(samples).all()
    assert (run / "samples.png").stat().st_size > 1000
    # any integrator steps what it supports: Euler on the SDE (Euler–Maruyama), torchsde's
    for method in ("euler", "heun", "torchsde-euler"):
        args = ["--method", method, "--eps", "1.0", "--n", "50", "--steps", "8"]
        assert main(["sample", "--run", str(run), *args]) == 0
    capsys.readouterr()
    # ... and says so in one line when it cannot
    assert main(["sample", "--run", str(run), "--method", "dopri5", "--eps", "0.5"]) == 2
    assert "cannot step SDE" in capsys.readouterr().err
    assert main(["sample", "--run", str(run), "--method", "torchsde-heun"]) == 2
    assert "cannot step ODE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["sample", "--run", str(run), "--eps", "-1"])
    assert stop.value.code == 2 and "--eps must be" in capsys.readouterr().err
    for method in ("rk4", "heun"):
        assert (
            main(["nll", "--run", str(run), "--n", "20", "--steps", "4", "--method", method]) == 0
        )
        result = json.loads(capsys.readouterr().out)
        assert math.isfinite(result["nll_nats"]) and result["nfe"] > 0


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_train_with_prefetching_producers(tmp_path: Path, backend: str) -> None:
    import multiprocessing

    run = tmp_path / "run"
    args = ["--coupling", "ot", "--prefetch", "2", "--prefetch-backend", backend]
    assert main(["train", "--out", str(run), *args, *TINY]) == 0
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert config["prefetch"] == 2 and config["prefetch_backend"] == backend
    assert metrics["steps"] == 30 and math.isfinite(metrics["final_loss"])
    assert not [t for t in threading.enumerate() if t.name.startswith("interpolants-prefetch")]
    assert not multiprocessing.active_children()
    with pytest.raises(ValueError, match="prefetch"):
        RunConfig(prefetch=-1).validate()
    with pytest.raises(ValueError, match="prefetch_backend"):
        RunConfig(prefetch_backend="fiber").validate()


def test_every_coupling_name_builds_a_coupling() -> None:
    """The names ``RunConfig.validate`` accepts are exactly those ``COUPLINGS`` can build."""
    from interpolants.cli import COUPLINGS
    from interpolants.cli._config import COUPLING_NAMES

    assert tuple(COUPLINGS) == COUPLING_NAMES
    with pytest.raises(ValueError, match="unknown coupling 'nope'"):
        RunConfig(coupling="nope").validate()


def test_recipes_cover_every_objective_and_interpolant() -> None:
    """Each learnable combination yields a velocity; a score where the objective learns one."""
    for objective, interpolant, gamma, base, coupling, has_score in [
        ("velocity", "linear", "none", "8gaussians", "ot", False),
        ("velocity", "vp", "none", "gaussian", "independent", True),
        ("velocity", "vp", "none", "gaussian", "ot", False),  # one-sided score needs independence
        ("split", "trig", "brownian", "8gaussians", "ot", True),
        ("denoiser", "onesided-linear", "none", "gaussian", "independent", True),
        ("score", "vp", "none", "gaussian", "independent", True),
        ("target", "linear", "none", "8gaussians", "ot", False),
    ]:
        config = RunConfig(
            objective=objective,
            interpolant=interpolant,
            gamma=gamma,
            base=base,
            coupling=coupling,
            hidden=8,
        )
        run = Run(config)
        t, x = torch.full((4,), 0.5), torch.randn(4, 2)
        assert run.velocity(run.model)(t, x).shape == (4, 2)
        assert (run.score(run.model) is not None) == has_score


def test_console_script_module_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "interpolants.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "train" in out.stdout


@pytest.mark.parametrize(
    ("flags", "hint"),
    [
        (["--objective", "denoiser"], "--objective split"),
        (["--objective", "score"], "--objective split"),
        (["--objective", "target"], "--gamma none"),
        (["--objective", "split", "--gamma", "none"], "--gamma brownian"),
        (["--coupling", "sb"], "--interpolant linear --gamma brownian"),
        (["--coupling", "sb", "--gamma", "brownian", "--coupling-reg", "0.1"], "--gamma-scale"),
        (["--coupling", "ot", "--coupling-reg", "0.1"], "--coupling sinkhorn"),
        (["--interpolant", "vp"], "--gamma none"),
        (["--interpolant", "vp", "--gamma", "none"], "--base gaussian"),
        (["--interpolant", "mirror"], "--base moons"),
        (["--interpolant", "encdec", "--gamma", "none", "--objective", "velocity"], "noise"),
        (["--interpolant", "trig", "--gamma", "brownian", "--gamma-scale", "5"], "--gamma-scale"),
        (["--coupling", "label-ot"], "--data digits"),
        (["--coupling", "inpaint"], "--base gaussian"),
        (["--data", "digits"], "--base gaussian"),
        (
            [
                "--interpolant",
                "vp",
                "--gamma",
                "none",
                "--base",
                "gaussian",
                "--objective",
                "score",
            ],
            "--coupling independent",
        ),
    ],
)
def test_unusable_runs_are_refused_up_front(
    flags: list[str], hint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Combinations that would train a model the run cannot sample with (or a path that
    contradicts the coupling) end in one line naming the flag to change, before training."""
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *flags, *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("interpolants: error:") and err.count("\n") == 1, err
    assert hint in err, err
    assert not out.exists()


def test_the_bridge_takes_its_sigma_from_the_path() -> None:
    run = Run(RunConfig(coupling="sb", gamma="brownian", gamma_scale=0.25, hidden=8))
    assert run.coupling.sigma == 0.5  # type: ignore[attr-defined]
    assert run.interpolant.gamma(torch.tensor([0.5])).item() == pytest.approx(0.5 * 0.5)


def _kill_after(monkeypatch: pytest.MonkeyPatch, steps: int) -> None:
    from interpolants.train._trainer import Trainer

    step = Trainer.step

    def dying(self: Trainer) -> float:
        if self.step_count == steps:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(Trainer, "step", dying)


def test_resume_continues_a_killed_run_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    flags = [*TINY[:-1], "--steps", "20", "--checkpoint-every", "10", "--quiet"]
    whole = tmp_path / "whole"
    assert main(["train", "--out", str(whole), *flags]) == 0
    killed = tmp_path / "killed"
    _kill_after(monkeypatch, 13)  # after the checkpoint of step 10
    with pytest.raises(KeyboardInterrupt):
        main(["train", "--out", str(killed), *flags])
    monkeypatch.undo()
    assert load_checkpoint(killed / "checkpoint.pt")["step"] == 10
    shutil.copytree(killed, tmp_path / "other")
    assert main(["train", "--resume", str(killed), "--quiet"]) == 0
    # the batches do not depend on who makes them: resume with producer processes
    other = ["--prefetch", "2", "--prefetch-backend", "process", "--quiet"]
    assert main(["train", "--resume", str(tmp_path / "other"), *other]) == 0
    want = load_checkpoint(whole / "checkpoint.pt")
    for folder in (killed, tmp_path / "other"):
        got = load_checkpoint(folder / "checkpoint.pt")
        assert got["step"] == 20
        for key in ("model", "ema"):
            assert all(torch.equal(got[key][k], v) for k, v in want[key].items())
        metrics = json.loads((folder / "metrics.json").read_text())
        assert (
            metrics["final_loss"] == json.loads((whole / "metrics.json").read_text())["final_loss"]
        )
    assert json.loads((tmp_path / "other" / "config.json").read_text())["prefetch"] == 2
    capsys.readouterr()
    # what a resume cannot change, and a folder that already holds a run
    assert main(["train", "--resume", str(killed), "--lr", "0.5"]) == 2
    assert "--lr cannot change it" in capsys.readouterr().err
    assert main(["train", "--out", str(whole), *flags]) == 2
    assert "--resume" in capsys.readouterr().err


def test_label_and_inpainting_couplings_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digits = tmp_path / "digits"
    flags = ["--data", "digits", "--base", "gaussian", "--coupling", "label-ot"]
    assert main(["train", "--out", str(digits), *flags, *TINY[:1], "5", *TINY[2:]]) == 0
    inpaint = tmp_path / "inpaint"
    flags = ["--coupling", "inpaint", "--base", "gaussian"]
    assert main(["train", "--out", str(inpaint), *flags, *TINY]) == 0
    capsys.readouterr()
    # sampling in-paints held-out targets: x0 keeps half of each target, ξ says which half
    assert main(["sample", "--run", str(inpaint), "--n", "100", "--steps", "4"]) == 0
    assert "W2 to held-out target" in capsys.readouterr().out
    run, _ = load_run(inpaint)
    samples = torch.load(inpaint / "samples.pt", weights_only=True)
    x0, mask = run.starts(100, torch.Generator().manual_seed(0))
    assert mask is not None and torch.equal(mask.sum(1), torch.ones(100))
    kept = mask.bool()
    assert torch.equal(x0[kept], run.test_target[:100][kept])
    assert samples.shape == (100, 2) and bool(torch.isfinite(samples).all())
    assert main(["nll", "--run", str(inpaint), "--n", "10", "--steps", "2"]) == 2
    assert "x0 is built from x1" in capsys.readouterr().err


def test_checkpoint_and_result_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TINY[:1], "5", *TINY[2:]]) == 0
    good = (run / "checkpoint.pt").read_bytes()
    state = load_checkpoint(run / "checkpoint.pt")
    nan = {k: torch.full_like(v, math.nan) for k, v in state["ema"].items()}

    def damaged(name: str) -> None:
        path = run / "checkpoint.pt"
        if name == "missing":
            path.unlink()
        elif name == "truncated":
            path.write_bytes(good[: len(good) // 2])
        elif name == "corrupt":
            data = bytearray(good)
            data[-200] ^= 0x10
            path.write_bytes(bytes(data))
        elif name == "foreign":
            torch.save(state, path)
        elif name == "nan":
            save_checkpoint({**state, "ema": nan}, path)

    capsys.readouterr()
    for name, words in [
        ("missing", "No such file"),
        ("truncated", "truncated"),
        ("corrupt", "checksum"),
        ("foreign", "not an interpolants checkpoint"),
        ("nan", "non-finite weights"),
    ]:
        damaged(name)
        for command in (["sample", "--n", "10"], ["nll", "--n", "10"]):
            assert main([command[0], "--run", str(run), *command[1:]]) == 2, (name, command)
            err = capsys.readouterr().err
            assert err.startswith("interpolants: error:") and err.count("\n") == 1, err
            assert words in err, (name, err)
        (run / "checkpoint.pt").write_bytes(good)
    # a non-finite likelihood is an error, not a JSON NaN with exit status 0
    import interpolants.cli._main as cli_main

    monkeypatch.setattr(cli_main, "heldout_nll", lambda *a, **k: {"nll_nats": math.nan})
    assert main(["nll", "--run", str(run), "--n", "10", "--steps", "2"]) == 2
    assert "not finite" in capsys.readouterr().err
    shutil.rmtree(run)


def test_validation_split_early_stopping_and_nll_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    flags = ["--validation", "200", "--patience", "2", "--val-every", "5", "--base", "gaussian"]
    flags += ["--objective", "velocity", "--gamma", "none", "--coupling", "independent"]
    assert main(["train", "--out", str(run), *flags, *TINY]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    val = metrics["validation"]
    steps = [s for s, _ in val["history"]]
    assert val["points"] == 200 and steps == list(range(5, metrics["steps"] + 1, 5))
    assert val["best_nll_nats"] == min(v for _, v in val["history"])
    assert val["best_step"] in steps and isinstance(val["stopped_early"], bool)
    if val["stopped_early"]:  # two evaluations in a row without improvement
        assert metrics["steps"] < 30 and steps[-3] == val["best_step"]
    best = load_checkpoint(run / "best.pt")
    assert best["step"] == val["best_step"]
    capsys.readouterr()
    # nll reports the split and the weights it used: the best validation checkpoint
    assert (
        main(["nll", "--run", str(run), "--split", "validation", "--n", "200", "--steps", "4"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "validation" and out["points"] == 200
    assert out["weights"] == f"best.pt (step {val['best_step']})"
    # the RK4-16 validation NLL of training and the RK4-4 evaluation here agree roughly
    assert abs(out["nll_nats"] - val["best_nll_nats"]) < 0.5
    for split in ("test", "train"):
        assert main(["nll", "--run", str(run), "--split", split, "--n", "50", "--steps", "2"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["split"] == split and out["points"] == 50
    run_loaded, _ = load_run(run)
    validation, test = run_loaded.split("validation"), run_loaded.split("test")
    assert validation.shape == (200, 2) and test.shape == (2000, 2)
    assert torch.cdist(validation, test).min() > 0  # independent draws: no point shared
    # --patience needs a validation set; a run without one has none to evaluate on digits
    assert main(["train", "--out", str(tmp_path / "x"), "--patience", "3", *TINY]) == 2
    assert "--validation" in capsys.readouterr().err
    digits = tmp_path / "digits"
    dflags = ["--data", "digits", "--base", "gaussian", "--steps", "2"]
    assert main(["train", "--out", str(digits), *dflags, *TINY[2:]]) == 0
    capsys.readouterr()
    assert main(["nll", "--run", str(digits), "--split", "validation", "--n", "5"]) == 2
    assert "no validation images" in capsys.readouterr().err
    digits_run = Run(RunConfig(data="digits", base="gaussian", validation=100))
    assert digits_run.split("validation").shape == (100, 64)
    assert digits_run.split("train").shape == (1397, 64)  # the validation images not trained on
    assert isinstance(digits_run.target, TensorData)
    assert torch.equal(digits_run.target.data, digits_run.split("train"))


# --- reflow (k-rectified flow) and one-step distillation --------------------------------------

STRAIGHT = ["--interpolant", "linear", "--gamma", "none", "--objective", "velocity"]


def test_reflow_rounds_and_distillation_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from interpolants.cli._recipes import TeacherVelocity
    from interpolants.coupling import ReflowCoupling

    teacher = tmp_path / "teacher"
    assert (
        main(["train", "--out", str(teacher), "--coupling", "independent", *STRAIGHT, *TINY]) == 0
    )
    out = tmp_path / "reflow"
    flags = ["--coupling", "reflow", "--reflow-from", str(teacher), "--reflow-steps", "4"]
    rounds = ["--reflow-rounds", "2", "--distill"]
    assert main(["train", "--out", str(out), *flags, *STRAIGHT, *rounds, *TINY]) == 0
    first = json.loads((out / "round-1" / "config.json").read_text())
    last = json.loads((out / "config.json").read_text())
    assert first["reflow_from"] == str(teacher) and not first["distill"]
    assert last["reflow_from"] == str(out / "round-1") and last["distill"]
    # the last round learned b at t = 0 only: one Euler step is its sampler
    assert (
        main(["sample", "--run", str(out), "--method", "euler", "--steps", "1", "--n", "50"]) == 0
    )
    # a reflow run's batches are (x0, X_1(x0)) of its teacher's velocity
    run, _ = load_run(out / "round-1")
    assert isinstance(run.coupling, ReflowCoupling)
    assert isinstance(run.coupling.velocity, TeacherVelocity)
    batch = run.batches()(torch.Generator().manual_seed(0))
    assert torch.equal(batch.x1, run.coupling.generate(batch.x0))
    t_run, t_model = load_run(teacher)
    expected = ReflowCoupling(t_run.velocity(t_model), run.coupling.integrator, steps=4)
    torch.testing.assert_close(batch.x1, expected.generate(batch.x0))
    distilled, _ = load_run(out)
    assert distilled.objective.time_sampler.sample(3).tolist() == [0.0, 0.0, 0.0]
    assert run.objective.time_sampler.sample(1000).std() > 0.2  # round 1: uniform times
    assert distilled.score(distilled.model) is None  # no score from dependent pairs


@pytest.mark.parametrize(
    ("flags", "hint"),
    [
        (["--reflow-from", "somewhere"], "pass --coupling reflow"),
        (["--coupling", "reflow"], "needs --reflow-from"),
        (["--reflow-steps", "3"], "need --coupling reflow"),
        (["--coupling", "reflow", "--reflow-from", "x", "--distill"], "--objective velocity"),
        (["--distill"], "--coupling reflow"),
        (["--reflow-rounds", "2"], "--reflow-rounds repeats --coupling reflow"),
        (["--coupling", "reflow", "--reflow-from", "x", "--reflow-rounds", "0"], "positive"),
    ],
)
def test_reflow_flags_are_checked_up_front(
    flags: list[str], hint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *flags, *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("interpolants: error:") and err.count("\n") == 1, err
    assert hint in err, err
    assert not out.exists()


def test_a_teacher_of_other_data_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teacher = tmp_path / "teacher"
    assert main(["train", "--out", str(teacher), "--data", "circles", *TINY]) == 0
    out = tmp_path / "student"
    flags = ["--coupling", "reflow", "--reflow-from", str(teacher)]
    assert main(["train", "--out", str(out), *flags, *TINY]) == 2
    err = capsys.readouterr().err
    assert "--data circles" in err and err.count("\n") == 1, err
    assert not (out / "checkpoint.pt").exists()


MEAN_FLOW = ["--objective", "mean-flow", "--gamma", "none"]


def test_a_mean_flow_run_samples_in_one_or_two_jumps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from interpolants.nn import AverageVelocityMLP

    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *MEAN_FLOW, "--coupling", "ot", *TINY]) == 0
    assert math.isfinite(json.loads((run / "metrics.json").read_text())["final_loss"])
    loaded, model = load_run(run)
    assert isinstance(model, AverageVelocityMLP)
    assert loaded.score(model) is None and loaded.flow_map(model) is not None
    capsys.readouterr()
    for steps in (1, 2):  # the default sampler of a mean-flow run: one jump per step
        out = tmp_path / f"jumps-{steps}"
        args = ["--run", str(run), "--out", str(out), "--n", "100", "--steps", str(steps)]
        assert main(["sample", *args]) == 0
        assert f"(NFE {steps})" in capsys.readouterr().out
        samples = torch.load(out / "samples.pt", weights_only=True)
        assert samples.shape == (100, 2) and torch.isfinite(samples).all()
    # its instantaneous velocity u(t, t, x) is an ordinary field: the ODE and the likelihood
    ode = ["--out", str(tmp_path / "ode"), "--method", "heun", "--n", "50", "--steps", "4"]
    assert main(["sample", "--run", str(run), *ode]) == 0
    assert "(NFE 8)" in capsys.readouterr().out
    assert main(["nll", "--run", str(run), "--n", "20", "--steps", "4"]) == 0
    assert math.isfinite(json.loads(capsys.readouterr().out)["nll_nats"])
    # ... but it learned no score: no SDE
    assert main(["sample", "--run", str(run), "--eps", "0.5", "--n", "10"]) == 2
    err = capsys.readouterr().err
    assert "--eps must be 0" in err and err.count("\n") == 1, err


def test_flow_map_sampling_needs_a_mean_flow_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    flags = ["--objective", "velocity", "--gamma", "none", "--steps", "2"]
    assert main(["train", "--out", str(run), *flags, *TINY[2:]]) == 0
    capsys.readouterr()
    assert main(["sample", "--run", str(run), "--method", "flow-map", "--n", "10"]) == 2
    err = capsys.readouterr().err
    assert "--method flow-map" in err and "--objective mean-flow" in err, err


@pytest.mark.parametrize(
    ("flags", "hint"),
    [
        (["--objective", "mean-flow"], "--gamma none"),  # the default γ is quadratic
        (["--objective", "mean-flow", "--gamma", "brownian"], "--gamma none"),
        (["--objective", "mean-flow", "--interpolant", "mirror"], "--interpolant linear or trig"),
        ([*MEAN_FLOW, "--interpolant", "encdec"], "--interpolant linear or trig"),
        ([*MEAN_FLOW, "--coupling", "sb"], "--coupling ot"),
        ([*MEAN_FLOW, "--coupling", "inpaint", "--base", "gaussian"], "another --coupling"),
        (["--objective", "mean-flow", "--interpolant", "vp"], "--gamma none"),
    ],
)
def test_unusable_mean_flow_runs_are_refused_up_front(
    flags: list[str], hint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *flags, *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("interpolants: error:") and err.count("\n") == 1, err
    assert hint in err, err
    assert not out.exists()


def test_a_one_sided_mean_flow_recipe_gives_a_velocity_and_no_score() -> None:
    config = RunConfig(
        objective="mean-flow", interpolant="vp", gamma="none", base="gaussian", hidden=8
    )
    run = Run(config)
    t, x = torch.full((4,), 0.5), torch.randn(4, 2)
    assert run.velocity(run.model)(t, x).shape == (4, 2)
    assert run.score(run.model) is None


def test_sde_samples_take_the_noise_peak_over_the_whole_interval() -> None:
    # γ = t(1 − t) peaks at 1/4 at t = 1/2. ε(t) = ε·γ(t)/max γ must not depend on the grid: a
    # grid of 3 steps (max γ on it 2/9) or 1 step (γ = 0 at both ends) still divides by 1/4.
    from interpolants import SDE, Euler, LinearInterpolant, time_grid
    from interpolants.cli import sde_samples
    from interpolants.integrate import GammaProportionalDiffusion
    from interpolants.interpolant import QuadraticGamma

    interpolant = LinearInterpolant(QuadraticGamma())
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def velocity(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -x

    def score(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -x

    for steps in (1, 3):
        got = sde_samples(
            interpolant, velocity, score, x0, 2.0, steps, torch.Generator().manual_seed(1)
        )
        expected = Euler().integrate(
            SDE(velocity, score, GammaProportionalDiffusion(interpolant, 2.0 / 0.25)),
            x0,
            time_grid(steps, dtype=torch.float64),
            generator=torch.Generator().manual_seed(1),
        )
        assert torch.allclose(got.state, expected.state, rtol=0, atol=1e-12), steps
    # one step from t = 0, where γ = 0: the Euler step of the ODE, no noise
    one = sde_samples(interpolant, velocity, score, x0, 2.0, 1, torch.Generator().manual_seed(1))
    assert torch.allclose(one.state, torch.zeros_like(x0), rtol=0, atol=1e-12)
