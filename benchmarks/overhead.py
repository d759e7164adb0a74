"""Per-call overhead: ``Interpolant.sample`` against its bare arithmetic, the velocity loss
against a hand-written MSE and torchebm's ``FlowMatchingLoss``.

    python benchmarks/overhead.py            # 41 alternating rounds
    python benchmarks/overhead.py --quick    # 11 rounds

Batch 256, d = 2, float32, one torch thread.

* **sample**: ``interp.sample(t, x0, x1, z)`` reading ``xt`` and ``velocity`` against the same
  two tensors written by hand (``tt = t[:, None]; xt = (1 − tt)x0 + tt·x1 [+ γz];
  v = x1 − x0 [+ γ̇z]`` for the linear path, its analogues for the others), for the linear
  path with γ ≡ 0 and with the Brownian γ = √(t(1−t)), the trigonometric and VP paths, the
  encoder–decoder and the mirror (by hand: γ̇ without the library's clamp near the ends).
  Blocks of 200 calls per side, alternated; the fastest block of each side is reported (on a
  shared machine other jobs only add time, and at this scale a median moves with them).
* **loss** (forward + backward): ``VelocityObjective(LinearInterpolant()).loss(model, x0, x1)``
  against ``((model(t, xt) − (x1 − x0))²).mean()`` written by hand with the same time draw,
  and torchebm's ``FlowMatchingLoss`` (linear interpolant, independent coupling), the same
  model on every side: the 3×256 SiLU MLP of the training-step benchmark, and a 2×32 one where
  the per-call overhead weighs more. Blocks of 20 steps per side, fastest block reported.

Targets (issue 17): sample ≤ 1.3× the bare arithmetic; the velocity loss ≤ 1.05× the
hand-written MSE; no host synchronisation in either (asserted by tests/test_no_sync.py).
"""

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from common import machine, table, versions, write_results
from interpolants import MLP, BrownianGamma, LinearInterpolant, VelocityObjective
from interpolants.interpolant import (
    EncoderDecoderInterpolant,
    MirrorInterpolant,
    TrigonometricInterpolant,
    VPInterpolant,
)
from training_step import load_average, wait_for_quiet

B, D = 256, 2


def blocks(fns: list[Callable[[], Any]], rounds: int, calls: int) -> list[float]:
    """Fastest µs per call of each function over alternating blocks of ``calls`` calls (the
    minimum: on a shared machine other jobs only ever add time to a block)."""
    for fn in fns:
        for _ in range(calls):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, acc in zip(fns, times):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            acc.append((time.perf_counter() - start) / calls * 1e6)
    return [min(t) for t in times]


def _bare_paths(t: Tensor, x0: Tensor, x1: Tensor, z: Tensor) -> list[tuple[Any, ...]]:
    """(name, interpolant, z or None, the same x_t and velocity target written by hand, from
    the same (B,) times)."""
    h = 0.5 * math.pi

    def linear() -> tuple[Tensor, Tensor]:
        tt = t[:, None]
        return (1 - tt) * x0 + tt * x1, x1 - x0

    def brownian() -> tuple[Tensor, Tensor]:
        tt = t[:, None]
        g = torch.sqrt(tt * (1 - tt))
        return (1 - tt) * x0 + tt * x1 + g * z, x1 - x0 + (1 - 2 * tt) / (2 * g) * z

    def trig() -> tuple[Tensor, Tensor]:  # also the VP path (x0 the noise)
        tt = t[:, None]
        c, s = torch.cos(h * tt), torch.sin(h * tt)
        return c * x0 + s * x1, h * (c * x1 - s * x0)

    def encoder_decoder() -> tuple[Tensor, Tensor]:
        tt = t[:, None]
        c2, first = torch.cos(math.pi * tt) ** 2, tt <= 0.5
        slope = -math.pi * torch.sin(2 * math.pi * tt)
        a, b = torch.where(first, c2, 0.0), torch.where(first, 0.0, c2)
        ad, bd = torch.where(first, slope, 0.0), torch.where(first, 0.0, slope)
        g, gd = torch.sin(math.pi * tt) ** 2, -slope
        return a * x0 + b * x1 + g * z, ad * x0 + bd * x1 + gd * z

    def mirror() -> tuple[Tensor, Tensor]:
        tt = t[:, None]
        g = torch.sqrt(tt * (1 - tt))
        return x1 + g * z, (1 - 2 * tt) / (2 * g) * z

    return [
        ("linear, γ ≡ 0", LinearInterpolant(), None, linear),
        ("linear, γ = √(t(1−t))", LinearInterpolant(BrownianGamma()), z, brownian),
        ("trigonometric, γ ≡ 0", TrigonometricInterpolant(), None, trig),
        ("VP (one-sided)", VPInterpolant(), None, trig),
        ("encoder–decoder, γ = sin²(πt)", EncoderDecoderInterpolant(), z, encoder_decoder),
        ("mirror, γ = √(t(1−t))", MirrorInterpolant(), z, mirror),
    ]


def sample_rows(rounds: int) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(0)
    x0, x1, z = (torch.randn(B, D, generator=gen) for _ in range(3))
    t = torch.rand(B, generator=gen)
    rows = []
    for name, interp, noise, bare in _bare_paths(t, x0, x1, z):

        def ours(interp: Any = interp, noise: Tensor | None = noise) -> tuple[Tensor, Tensor]:
            s = interp.sample(t, x0, x1, noise)
            return s.xt, s.velocity

        a, b = ours(), bare()
        assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-3)
        mine, hand = blocks([ours, bare], rounds, 200)
        rows.append({"case": name, "ours_us": mine, "bare_us": hand, "ratio": mine / hand})
    return rows


class _XFirst(nn.Module):
    """torchebm calls ``model(x, t)``; ours is ``model(t, x)``: the same network."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, t: Tensor, **kwargs: Any) -> Tensor:
        out: Tensor = self.net(t, x)
        return out


def loss_row(label: str, hidden: int, depth: int, rounds: int) -> dict[str, Any]:
    from torchebm.losses import FlowMatchingLoss

    torch.manual_seed(0)
    model = MLP(D, hidden=hidden, depth=depth)
    gen = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(B, D, generator=gen), torch.randn(B, D, generator=gen)
    objective = VelocityObjective(LinearInterpolant())
    ebm = FlowMatchingLoss(_XFirst(model), interpolant="linear", dtype=torch.float32)
    g_ours, g_hand = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)

    def ours() -> None:
        model.zero_grad(set_to_none=True)
        objective.loss(model, x0, x1, generator=g_ours).backward()

    def hand() -> None:
        model.zero_grad(set_to_none=True)
        t = torch.rand(B, generator=g_hand)
        tt = t[:, None]
        xt = (1 - tt) * x0 + tt * x1
        ((model(t, xt) - (x1 - x0)) ** 2).mean().backward()

    def theirs() -> None:
        model.zero_grad(set_to_none=True)
        ebm(x1, x0=x0).backward()

    mine, by_hand, peer = blocks([ours, hand, theirs], rounds, 20)
    return {
        "model": label,
        "ours_us": mine,
        "hand_us": by_hand,
        "torchebm_us": peer,
        "ratio_hand": mine / by_hand,
        "ratio_torchebm": mine / peer,
    }


def loss_rows(rounds: int) -> list[dict[str, Any]]:
    return [
        loss_row(label, hidden, depth, rounds)
        for label, hidden, depth in (("3×256 MLP", 256, 3), ("2×32 MLP", 32, 2))
    ]


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Per-call overhead",
        "",
        f"Batch {B}, d = {D}, float32, torch threads {m['torch_threads']}; {m['cpu']} "
        f"({m['cpu_count']} cores, shared with other jobs; 1-minute load "
        f"{report['load_before']:.2f} before, {report['load_after']:.2f} after). Fastest of "
        f"{report['rounds']} alternating blocks per side.",
        "",
        "## `Interpolant.sample` (x_t and the velocity target) against the bare arithmetic",
        "",
        table(
            ["path", "ours (µs)", "bare (µs)", "ratio"],
            [[r["case"], r["ours_us"], r["bare_us"], r["ratio"]] for r in report["sample"]],
        ),
        "",
        "## Velocity loss, forward + backward",
        "",
        table(
            [
                "model",
                "ours (µs)",
                "hand-written MSE (µs)",
                "torchebm (µs)",
                "ours / hand",
                "ours / torchebm",
            ],
            [
                [
                    r["model"],
                    r["ours_us"],
                    r["hand_us"],
                    r["torchebm_us"],
                    r["ratio_hand"],
                    r["ratio_torchebm"],
                ]
                for r in report["loss"]
            ],
        ),
        "",
        "## Targets",
        "",
    ]
    worst_sample = max(r["ratio"] for r in report["sample"])
    loss_rows_by_model = [
        [
            f"velocity loss ≤ 1.05× a hand-written MSE ({r['model']})",
            f"{r['ratio_hand']:.3f}×",
            "yes" if r["ratio_hand"] <= 1.05 else "no",
        ]
        for r in report["loss"]
    ]
    lines += [
        table(
            ["target", "measured", "met"],
            [
                [
                    "`sample` ≤ 1.3× the bare arithmetic (worst path)",
                    f"{worst_sample:.2f}×",
                    "yes" if worst_sample <= 1.3 else "no",
                ],
                *loss_rows_by_model,
                ["no host synchronisation", "tests/test_no_sync.py", "yes"],
            ],
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="11 rounds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    rounds = 11 if args.quick else 41
    before = wait_for_quiet(max_load=1.0, max_wait=120.0)
    report: dict[str, Any] = {
        "machine": machine(),
        "versions": versions("torchebm"),
        "rounds": rounds,
        "load_before": before,
    }
    report["sample"] = sample_rows(rounds)
    for r in report["sample"]:
        print(
            f"sample {r['case']}: ours {r['ours_us']:.1f} µs, bare {r['bare_us']:.1f} µs, "
            f"{r['ratio']:.2f}×"
        )
    report["loss"] = loss_rows(rounds)
    for r in report["loss"]:
        print(
            f"loss {r['model']}: ours {r['ours_us']:.0f} µs, hand {r['hand_us']:.0f} µs "
            f"({r['ratio_hand']:.3f}×), torchebm {r['torchebm_us']:.0f} µs "
            f"({r['ratio_torchebm']:.3f}×)"
        )
    report["load_after"] = load_average()
    suite = "overhead_quick" if args.quick else "overhead"
    write_results(suite, report, markdown(report))
    print(f"wrote benchmarks/results/{suite}.json and .md")


if __name__ == "__main__":
    main()
