r"""Density estimation: test NLL on 2-D toys and bits/dim on the bundled digits, per interpolant.

    python benchmarks/density.py            # 2000 toy steps, 3000 digit steps (~10 min on 2 cores)
    python benchmarks/density.py --quick    # 300 / 500 steps, smaller test sets (~2 min)
    python benchmarks/density.py --threads 0  # torch's default thread count (default 1)

Base N(0, I), independent coupling, one seed. For each of the linear, trigonometric and VP
interpolants, without γ (the ODE of a deterministic path; VP is one-sided, so its base noise
plays γ's part and there is no "with γ" variant) and with γ(t) = t(1−t) (the velocity b learned
directly by :class:`~interpolants.VelocityObjective` with ``antithetic=True``), we train a
fixed budget (steps × batch, CPU-seconds reported) and evaluate the held-out log-likelihood by
the probability-flow ODE backwards with the exact divergence (RK4,
:func:`interpolants.cli.heldout_nll`). Toys: moons, 8 Gaussians and checkerboard of
:mod:`interpolants.data` (test NLL in nats; for 8 Gaussians the true NLL of the mixture is
shown for reference). Digits: scikit-learn's 8×8 digits dequantised to [−1, 1) with 17 levels
(:func:`interpolants.data.load_digits`), 64-d :class:`~interpolants.MLP`, bits/dim by
``bits_per_dim(log_prob, 64, levels=17, low=-1, high=1)``.

Training recipe (every row): :class:`~interpolants.MLP` 3×256, Adam 1e-3, batch 256,
gradient-norm clipping 1, EMA 0.995, uniform t.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, machine, table, versions, write_results
from interpolants import (
    MLP,
    GaussianMixture,
    IndependentCoupling,
    LinearInterpolant,
    PairedBatches,
    Trainer,
    VelocityObjective,
)
from interpolants.data import (
    Checkerboard,
    EightGaussians,
    GaussianMixtureData,
    Moons,
    TensorData,
    load_digits,
)
from interpolants.cli import heldout_nll
from interpolants.interpolant import QuadraticGamma, TrigonometricInterpolant, VPInterpolant

GAMMA_A = 1.0  # γ(t) = a·t(1−t)


def configurations() -> dict[str, VelocityObjective]:
    """The objectives compared (each learns the velocity b)."""
    gamma = QuadraticGamma(GAMMA_A)
    return {
        "linear, γ = 0": VelocityObjective(LinearInterpolant()),
        f"linear, γ = {GAMMA_A:g}·t(1−t)": VelocityObjective(
            LinearInterpolant(gamma), antithetic=True
        ),
        "trig, γ = 0": VelocityObjective(TrigonometricInterpolant()),
        f"trig, γ = {GAMMA_A:g}·t(1−t)": VelocityObjective(
            TrigonometricInterpolant(gamma), antithetic=True
        ),
        "VP (one-sided)": VelocityObjective(VPInterpolant()),
    }


def fit(
    objective: VelocityObjective, base: Any, target: Any, dim: int, steps: int, seed: int
) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = MLP(dim, hidden=256, depth=3)
    trainer = Trainer(
        model,
        objective,
        PairedBatches(base, target, 256, IndependentCoupling()),
        lr=1e-3,
        ema_decay=0.995,
        grad_clip=1.0,
        seed=seed,
    )
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(steps, progress=False)
    return {"model": trainer.sampling_model.eval(), "cpu_s": time.process_time() - start}


def scored(
    title: str,
    objective: VelocityObjective,
    target: Any,
    test: Tensor,
    normal: GaussianMixture,
    steps: int,
    rk4_steps: int,
    seed: int,
    **nll: Any,
) -> dict[str, Any]:
    """Train ``objective`` from N(0, I) to ``target`` and score it on ``test``: held-out NLL
    (and bits/dim when ``nll`` holds the dequantisation), training and evaluation CPU time;
    prints a line starting with ``title``."""
    tr = fit(objective, GaussianMixtureData(normal), target, test.shape[1], steps, seed)
    start = time.process_time()
    res = heldout_nll(
        tr["model"], test, lambda x: normal.to(dtype=x.dtype).log_prob(x), steps=rk4_steps, **nll
    )
    row: dict[str, Any] = {
        **{k: res[k] for k in ("nll_nats", "bits_per_dim") if k in res},
        "train_cpu_s": tr["cpu_s"],
        "eval_cpu_s": time.process_time() - start,
        "nfe": res["nfe"],
    }
    score = f"bpd {row['bits_per_dim']:.3f}" if nll else f"NLL {row['nll_nats']:.3f}"
    print(f"{title} {score}  train {row['train_cpu_s']:.1f} s", flush=True)
    return row


def run_toys(steps: int, n_test: int, rk4_steps: int, seed: int) -> dict[str, Any]:
    normal = GaussianMixture.standard_normal(2)
    out: dict[str, Any] = {}
    for name, toy in (
        ("moons", Moons()),
        ("8gaussians", EightGaussians()),
        ("checkerboard", Checkerboard()),
    ):
        test = toy.sample(n_test, torch.Generator().manual_seed(20_000 + seed))
        rows: dict[str, Any] = {}
        for label, objective in configurations().items():
            title = f"{name:12s} {label:24s}"
            rows[label] = scored(title, objective, toy, test, normal, steps, rk4_steps, seed)
        entry: dict[str, Any] = {"rows": rows}
        if isinstance(toy, EightGaussians):
            mix = toy.as_mixture(torch.float64)
            entry["true_nll_nats"] = float(-mix.log_prob(test.double()).mean())
        out[name] = entry
    return out


def run_digits(steps: int, n_test: int, rk4_steps: int, seed: int) -> dict[str, Any]:
    digits = load_digits(torch.Generator().manual_seed(seed))
    normal = GaussianMixture.standard_normal(64)
    target, test = TensorData(digits.train), digits.test[:n_test]
    rows: dict[str, Any] = {}
    for label, objective in configurations().items():
        title = f"{'digits':12s} {label:24s}"
        rows[label] = scored(
            title,
            objective,
            target,
            test,
            normal,
            steps,
            rk4_steps,
            seed,
            levels=17,
            low=-1.0,
            high=1.0,
        )
    return {"rows": rows, "n_test": int(test.shape[0]), "n_train": int(digits.train.shape[0])}


def markdown(report: dict[str, Any]) -> str:
    s, m = report["settings"], report["machine"]
    toys, digits = report["toys"], report["digits"]
    labels = list(next(iter(toys.values()))["rows"])
    lines = [
        "# Density estimation: held-out NLL per interpolant",
        "",
        f"Machine: {m['cpu']}, {m['cpu_count']} cores, torch threads {m['torch_threads']}. "
        f"{'Quick run' if s['quick'] else 'Full run'}, seed {s['seed']} (one seed). "
        "Base N(0, I), independent coupling, MLP 3×256, Adam 1e-3, batch 256, clip 1, EMA 0.995. "
        f"γ > 0 rows: γ = {GAMMA_A:g}·t(1−t), velocity learned directly with antithetic pairs. "
        f"Likelihood: probability-flow ODE backwards, RK4 with {s['rk4_steps_toys']} (toys) / "
        f"{s['rk4_steps_digits']} (digits) steps, exact divergence.",
        "",
        f"## 2-D toys: test NLL (nats, lower is better), {s['toy_steps']} steps × batch 256, "
        f"{s['toy_test']} test points",
        "",
    ]
    headers = ["interpolant", *[f"{k} NLL" for k in toys], "train CPU s (mean)"]
    body = []
    for label in labels:
        cpu = sum(t["rows"][label]["train_cpu_s"] for t in toys.values()) / len(toys)
        body.append(
            [label, *[round(t["rows"][label]["nll_nats"], 3) for t in toys.values()], round(cpu, 1)]
        )
    if "true_nll_nats" in toys.get("8gaussians", {}):
        body.append(["*true density*", "", round(toys["8gaussians"]["true_nll_nats"], 3), "", ""])
    lines += [table(headers, body), ""]
    lines += [
        f"## Digits (8×8, 17 levels, [−1, 1)): {s['digit_steps']} steps × batch 256, "
        f"{digits['n_test']} test images",
        "",
        table(
            ["interpolant", "NLL (nats)", "bits/dim", "train CPU s", "NLL eval CPU s"],
            [
                [
                    label,
                    round(r["nll_nats"], 2),
                    round(r["bits_per_dim"], 3),
                    round(r["train_cpu_s"], 1),
                    round(r["eval_cpu_s"], 1),
                ]
                for label, r in digits["rows"].items()
            ],
        ),
        "",
        "bits/dim = (NLL − 64·log(17/2)) / (64·ln 2): an upper bound on the discrete data's "
        "bits/dim (uniform dequantisation); a uniform model on the 17 levels scores "
        "log2(17) = 4.087.",
        "",
        f"Plot: `results/{report['name']}.png`.",
        "",
    ]
    return "\n".join(lines)


def plot(report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    toys, digits = report["toys"], report["digits"]
    panels = [
        (f"{k}: test NLL (nats)", {lab: r["nll_nats"] for lab, r in v["rows"].items()})
        for k, v in toys.items()
    ]
    panels.append(
        ("digits: bits/dim", {lab: r["bits_per_dim"] for lab, r in digits["rows"].items()})
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    for ax, (title, vals) in zip(axes[0], panels):
        ax.bar(range(len(vals)), list(vals.values()), color="C0")
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels(list(vals), rotation=45, ha="right", fontsize=7)
        lo = min(vals.values())
        hi = max(vals.values())
        ax.set_ylim(lo - 0.1 * (hi - lo + 1e-3) - 0.05, hi + 0.1 * (hi - lo + 1e-3) + 0.05)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = RESULTS / f"{report['name']}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short budgets (~2 min)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1; 0 keeps torch's default)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.quick:
        settings = {
            "toy_steps": 300,
            "toy_test": 500,
            "digit_steps": 500,
            "digit_test": 100,
            "rk4_steps_toys": 32,
            "rk4_steps_digits": 16,
        }
    else:
        settings = {
            "toy_steps": 2000,
            "toy_test": 2000,
            "digit_steps": 3000,
            "digit_test": 300,
            "rk4_steps_toys": 64,
            "rk4_steps_digits": 32,
        }
    settings.update(quick=args.quick, seed=args.seed, batch=256, gamma=f"{GAMMA_A:g}·t(1−t)")
    name = "density_quick" if args.quick else "density"
    toys = run_toys(
        settings["toy_steps"], settings["toy_test"], settings["rk4_steps_toys"], args.seed
    )
    digits = run_digits(
        settings["digit_steps"], settings["digit_test"], settings["rk4_steps_digits"], args.seed
    )
    report = {
        "name": name,
        "machine": machine(),
        "versions": versions(),
        "settings": settings,
        "toys": toys,
        "digits": digits,
    }
    plot(report)
    md = markdown(report)
    write_results(name, report, md)
    print(md)


if __name__ == "__main__":
    main()
