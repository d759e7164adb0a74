"""The ``interpolants`` command line: help, one-line errors, and a tiny train → sample → nll."""

import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from interpolants.cli import Run, RunConfig, main

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
    assert capsys.readouterr().err.strip() == "interpolants: error: lr must be positive, got -1.0"
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


def test_recipes_cover_every_objective_and_interpolant() -> None:
    """Each learnable combination yields a velocity; a score where the objective learns one."""
    for objective, interpolant, gamma, has_score in [
        ("velocity", "linear", "none", False),
        ("velocity", "vp", "none", True),
        ("split", "trig", "brownian", True),
        ("denoiser", "onesided-linear", "none", True),
        ("score", "vp", "none", True),
        ("target", "linear", "none", False),
    ]:
        config = RunConfig(objective=objective, interpolant=interpolant, gamma=gamma, hidden=8)
        run = Run(config)
        t, x = torch.full((4,), 0.5), torch.randn(4, 2)
        assert run.velocity(run.model)(t, x).shape == (4, 2)
        assert (run.score(run.model) is not None) == has_score
    with pytest.raises(ValueError, match="does not determine the velocity"):
        r = Run(RunConfig(objective="denoiser", interpolant="linear", gamma="brownian"))
        r.velocity(r.model)


def test_console_script_module_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "interpolants.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "train" in out.stdout
