"""The ``interpolants`` command (see :mod:`interpolants.cli`)."""

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import torch

from .._atomic import write_atomic, write_text_atomic
from ..data import DigitsData
from ..metrics._distances import wasserstein2
from ..train._checkpoint import load_checkpoint
from ._config import (
    BASES,
    DATASETS,
    GAMMAS,
    INTEGRATORS,
    INTERPOLANTS,
    LR_SCHEDULES,
    OBJECTIVES,
    PREFETCH_BACKENDS,
    REFLOW_METHODS,
    SPLITS,
    RunConfig,
    load_config,
)
from ._evaluate import (
    flow_map_samples,
    heldout_nll,
    ode_samples,
    plot_run,
    sde_samples,
    w2_table,
)
from ._recipes import BEST, COUPLINGS, load_run, reflow_rounds
from ._training import train_run

__all__ = ["main"]

DEMO_NFES = (1, 2, 4, 8, 32)
DEMO_EPSILONS = (0.0, 0.5, 1.0)


def _add_run_options(p: argparse.ArgumentParser, defaults: RunConfig) -> None:
    choices = {
        "data": DATASETS,
        "base": BASES,
        "interpolant": tuple(INTERPOLANTS),
        "gamma": tuple(GAMMAS),
        "coupling": tuple(COUPLINGS),
        "objective": tuple(OBJECTIVES),
        "lr_schedule": LR_SCHEDULES,
        "prefetch_backend": PREFETCH_BACKENDS,
        "reflow_method": REFLOW_METHODS,
    }
    for f in fields(RunConfig):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        kind = type(default)
        if kind is bool:  # a switch (argparse's type=bool would read "False" as true)
            p.add_argument(flag, action="store_true", help=f"(default {default})")
        elif f.name in choices:
            p.add_argument(
                flag, default=default, choices=choices[f.name], help=f"(default {default})"
            )
        else:
            text = f"{HELP[f.name]} " if f.name in HELP else ""
            p.add_argument(flag, type=kind, default=default, help=f"{text}(default {default})")


HELP = {
    "validation": "hold out this many points for the validation NLL (the last training images "
    "of the digits, not trained on; fresh draws of a toy), evaluated every --val-every steps; "
    "the weights of lowest validation NLL go to best.pt, which sample and nll then use",
    "patience": "early stopping: stop after this many validation evaluations without "
    "improvement (0: train all --steps; needs --validation)",
    "val_every": "steps between validation evaluations",
}


# options that choose how a run is executed, not what it computes: a resumed run may change them
EXECUTION = ("device", "prefetch", "prefetch_backend")


def _config(args: argparse.Namespace) -> RunConfig:
    return RunConfig(**{f.name: getattr(args, f.name) for f in fields(RunConfig)}).validate()


def _resumed_config(args: argparse.Namespace) -> RunConfig:
    """The configuration of the run folder ``--resume``, with the execution options given."""
    folder = Path(args.resume)
    config = load_config(folder)
    defaults = RunConfig()
    for f in fields(RunConfig):
        given = getattr(args, f.name)
        if f.name in EXECUTION:
            if given != getattr(defaults, f.name):
                setattr(config, f.name, given)
        elif given != getattr(defaults, f.name) and given != getattr(config, f.name):
            flag = "--" + f.name.replace("_", "-")
            raise ValueError(
                f"--resume continues the run in {folder} with its config.json; {flag} cannot "
                f"change it (only --device, --prefetch and --prefetch-backend can)"
            )
    return config.validate()


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        out = Path(args.resume)
        if args.out not in (None, args.resume):
            raise ValueError("--resume writes into the run folder it continues: drop --out")
        config = _resumed_config(args)
    else:
        out = Path("runs/latest" if args.out is None else args.out)
        config = _config(args)
        if (out / "checkpoint.pt").exists():
            raise ValueError(
                f"{out} already holds a run: continue it with --resume {out}, or pass another --out"
            )
    resume = args.resume is not None
    if args.reflow_rounds != 1:  # k-rectified flow: the earlier rounds first, each a teacher
        if resume:
            raise ValueError("--resume continues one run: drop --reflow-rounds")
        *earlier, (config, _) = reflow_rounds(config, out, args.reflow_rounds)
        for r, (round_config, folder) in enumerate(earlier, 1):
            if (folder / "checkpoint.pt").exists():
                raise ValueError(f"{folder} already holds a run: pass another --out")
            _, trainer, seconds = train_run(
                round_config, folder, not args.quiet, checkpoint_every=args.checkpoint_every
            )
            print(f"reflow round {r}: trained in {seconds:.1f} s; wrote {folder}")
    _, trainer, seconds = train_run(
        config, out, not args.quiet, resume=resume, checkpoint_every=args.checkpoint_every
    )
    what = "resumed and trained" if resume else "trained"
    print(
        f"{what} to step {trainer.step_count} in {seconds:.1f} s; wrote {out / 'checkpoint.pt'} "
        f"and {out / 'metrics.json'}"
    )
    if (out / BEST).exists():
        best = load_checkpoint(out / BEST)["early_stopping"]
        print(
            f"lowest validation NLL {best['best']:.4f} nats at step {best['best_step']}: "
            f"{out / BEST} (used by sample and nll)"
        )
    return 0


def _finite(samples: torch.Tensor, what: str) -> None:
    if not bool(torch.isfinite(samples).all()):
        raise ValueError(f"the {what} are not finite: the model diverged or the run is corrupt")


def cmd_sample(args: argparse.Namespace) -> int:
    run, model = load_run(Path(args.run))
    gen = torch.Generator().manual_seed(args.seed)
    x0, condition = run.starts(args.n, gen)
    x0 = x0.to(run.config.device)
    condition = None if condition is None else condition.to(run.config.device)
    velocity = run.velocity(model, condition)
    flow_map = run.flow_map(model)  # a mean-flow run's jumps: the default sampler
    method = args.method or ("flow-map" if flow_map is not None else "heun")
    if method == "flow-map" and flow_map is None:
        raise ValueError(
            "--method flow-map jumps with a learned average velocity u(t, r, x): it needs a run "
            f"trained with --objective mean-flow, not {run.config.objective}"
        )
    integrator = INTEGRATORS[method]() if method != "flow-map" else None
    if args.eps > 0:
        score = run.score(model, condition)
        if score is None:
            raise ValueError(
                f"the {run.config.objective} objective learned no score for this run, so --eps "
                "must be 0 (the ODE); train with --objective split (or denoiser, one-sided "
                "with --coupling independent) to sample an SDE"
            )
        sol = sde_samples(
            run.interpolant, velocity, score, x0, args.eps, args.steps, gen, integrator
        )
        traj = None
    else:
        if flow_map is not None and integrator is None:
            sol = flow_map_samples(flow_map, x0, args.steps, save=20)
        else:
            assert integrator is not None
            sol = ode_samples(velocity, x0, integrator, args.steps, save=20)
        traj = sol.trajectory
    _finite(sol.state, "samples")
    out = Path(args.out)
    samples = sol.state.cpu()
    write_atomic(out / "samples.pt", lambda fh: torch.save(samples, fh))
    if run.dim == 2:
        reference = run.test_target
        plot_run(out / "samples.png", reference, {f"{method} samples": sol.state}, traj)
        print(f"W2 to held-out target: {wasserstein2(sol.state, reference):.4f} (NFE {sol.nfe})")
    print(f"wrote {out / 'samples.pt'}" + (f" and {out / 'samples.png'}" if run.dim == 2 else ""))
    return 0


def cmd_nll(args: argparse.Namespace) -> int:
    run, model = load_run(Path(args.run))
    base_log_prob = run.base_log_prob()
    if base_log_prob is None:
        why = "x0 is built from x1" if run.config.coupling == "inpaint" else "no closed form"
        raise ValueError(f"the base of this run has no log-density ({why}): no likelihood")
    data = run.split(args.split, args.n).to(run.config.device)
    levels = DigitsData.levels if run.config.data == "digits" else None
    result = heldout_nll(
        run.velocity(model),
        data,
        base_log_prob,
        steps=args.steps,
        levels=levels,
        integrator=INTEGRATORS[args.method](),
    )
    bad = {k: v for k, v in result.items() if not math.isfinite(v)}
    if bad:
        raise ValueError(
            f"the {args.split} likelihood is not finite "
            f"({', '.join(f'{k} = {v}' for k, v in bad.items())})"
            ": the model diverged or the run is corrupt"
        )
    report = {"split": args.split, "points": int(data.shape[0]), "weights": run.weights}
    print(json.dumps({**report, **result}, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    config = RunConfig(
        steps=args.steps, seed=args.seed, lr=args.lr, lr_schedule=args.lr_schedule
    ).validate()
    print(
        f"Training an OT-coupled stochastic interpolant {config.base} -> {config.data} "
        f"(linear, gamma = {config.gamma_scale} t(1-t), split (v, eta) objective, "
        f"SDE diffusion eps(t) = eps * gamma(t) / max gamma, "
        f"{config.steps} steps, batch {config.batch}) on the CPU ..."
    )
    run, trainer, seconds = train_run(config, out, progress=not args.quiet)
    model = trainer.sampling_model
    velocity, score = run.velocity(model), run.score(model)
    assert score is not None
    gen = torch.Generator().manual_seed(args.seed + 1)
    x0 = run.base.sample(args.n, gen)
    reference = run.test_target[: args.n]
    rows = w2_table(velocity, x0, reference, DEMO_NFES, INTEGRATORS["euler"])
    sde, sde_nfe, sde_states = {}, {}, {}
    for eps in DEMO_EPSILONS:
        sol = sde_samples(run.interpolant, velocity, score, x0, eps, args.sde_steps, gen)
        sde[eps] = wasserstein2(sol.state, reference)
        sde_nfe[eps] = sol.nfe
        sde_states[eps] = sol.state
    base_log_prob = run.base_log_prob()
    assert base_log_prob is not None
    nll = heldout_nll(velocity, reference[: args.nll_points], base_log_prob, steps=64)
    floor = wasserstein2(run.target.sample(args.n, gen), reference)
    ode = ode_samples(velocity, x0, INTEGRATORS["heun"](), 32, save=32)
    plot_run(
        out / "demo.png",
        reference,
        {"ODE (Heun, 32 steps)": ode.state, f"SDE (eps = {DEMO_EPSILONS[-1]})": sde_states[1.0]},
        ode.trajectory,
    )
    metrics = {
        "config": json.loads(config.to_json()),
        "train_seconds": round(seconds, 1),
        "w2_ode_euler": {str(k): v for k, v in rows.items()},
        "w2_sde_euler_maruyama": {str(k): v for k, v in sde.items()},
        "sde_steps": args.sde_steps,
        "sde_nfe": {str(k): v for k, v in sde_nfe.items()},
        "w2_two_target_samples": floor,
        "heldout_nll_nats": nll["nll_nats"],
        "nll_points": args.nll_points,
    }
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    print(f"\ntrained in {seconds:.1f} s; {args.n} samples vs {args.n} held-out target points")
    print("\n| sampler | NFE | W2 |\n|---|---|---|")
    for nfe, w in rows.items():
        print(f"| ODE Euler | {nfe} | {w:.3f} |")
    for eps, w in sde.items():
        print(f"| SDE Euler-Maruyama, eps = {eps} | {sde_nfe[eps]} | {w:.3f} |")
    print(f"| two independent target samples (floor) | - | {floor:.3f} |")
    print(f"\ntest NLL: {nll['nll_nats']:.3f} nats ({args.nll_points} points, RK4 64 steps)")
    print(f"wrote {out / 'demo.png'}, {out / 'metrics.json'}, {out / 'checkpoint.pt'}")
    return 0


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: small models gain little from more, and on a busy "
        "machine spin-waiting threads can slow every step down; 0 keeps torch's default)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``interpolants`` command."""
    parser = argparse.ArgumentParser(
        prog="interpolants", description="Train and sample stochastic interpolants."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model; writes config, checkpoint, metrics")
    _add_run_options(p, RunConfig())
    p.add_argument("--out", default=None, help="run folder (default runs/latest)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN",
        help="continue the run in folder RUN from its checkpoint to its --steps (exactly: the "
        "same batches and noise as an uninterrupted run); --device, --prefetch and "
        "--prefetch-backend may change",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=500,
        help="write the checkpoint every this many steps, and at the end (default 500)",
    )
    p.add_argument(
        "--reflow-rounds",
        type=int,
        default=1,
        metavar="K",
        help="k-rectified flow with --coupling reflow: K rounds, each round's model the next "
        "one's teacher (rounds 1..K-1 in OUT/round-r, the last in OUT; default 1)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_threads(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="sample a trained run by ODE or SDE")
    p.add_argument("--run", required=True, help="run folder written by `train`")
    p.add_argument(
        "--method",
        default=None,
        choices=(*INTEGRATORS, "flow-map"),
        help="integrator (default heun; flow-map for a --objective mean-flow run: one "
        "evaluation of its average velocity per step, --steps 1 for one-step samples)",
    )
    p.add_argument("--steps", type=int, default=32, help="time steps (default 32)")
    p.add_argument(
        "--eps",
        type=float,
        default=0.0,
        help="peak diffusion ε of the SDE (default 0: the probability-flow ODE)",
    )
    p.add_argument("--n", type=int, default=2000, help="number of samples (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default: the run folder)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "nll", help="held-out negative log-likelihood (and bits/dim for digits), as JSON"
    )
    p.add_argument("--run", required=True, help="run folder written by `train`")
    p.add_argument(
        "--split",
        default="test",
        choices=SPLITS,
        help="the data evaluated (default test; validation: the --validation points held out "
        "in training; the JSON output names it)",
    )
    p.add_argument(
        "--n", type=int, default=500, help="points, the first of the split (default 500)"
    )
    p.add_argument("--steps", type=int, default=64, help="integrator steps (default 64)")
    p.add_argument("--method", default="rk4", choices=tuple(INTEGRATORS), help="ODE integrator")
    p.set_defaults(func=cmd_nll)

    p = sub.add_parser("demo", help="train a small 2-D model and report W2 and NLL")
    p.add_argument("--out", default="demo", help="output folder (default demo)")
    p.add_argument("--steps", type=int, default=RunConfig().steps)
    p.add_argument("--lr", type=float, default=RunConfig().lr, help="peak learning rate")
    p.add_argument("--lr-schedule", default=RunConfig().lr_schedule, choices=LR_SCHEDULES)
    p.add_argument("--n", type=int, default=2000, help="samples for W2 (default 2000)")
    p.add_argument("--sde-steps", type=int, default=100, help="SDE steps (default 100)")
    p.add_argument("--nll-points", type=int, default=1000, help="NLL points (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_threads(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``interpolants`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "out", "") is None and hasattr(args, "run"):
        args.out = args.run
    if getattr(args, "eps", 0.0) < 0:
        parser.error("--eps must be ≥ 0")
    if getattr(args, "checkpoint_every", 0) < 0:
        parser.error("--checkpoint-every must be ≥ 0")
    for name in ("steps", "n", "sde_steps", "nll_points"):
        if hasattr(args, name) and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if getattr(args, "threads", 0) > 0:
        torch.set_num_threads(args.threads)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, OSError, FloatingPointError) as err:
        text = " ".join(str(err).split()) or type(err).__name__  # one line
        print(f"interpolants: error: {text}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
