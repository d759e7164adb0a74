"""Training runs of the ``interpolants`` command: the loop, early stopping and ``best.pt``."""

import json
import math
import time
from pathlib import Path

from .._atomic import write_text_atomic
from ..data import PrefetchedBatches
from ..density import EarlyStopping
from ..train._checkpoint import load_checkpoint, save_checkpoint
from ..train._trainer import Trainer
from ._config import RunConfig
from ._recipes import BEST, Run

__all__ = ["SaveBest", "early_stopping", "train_run"]


def train_run(
    config: RunConfig,
    out: Path,
    progress: bool = True,
    resume: bool = False,
    checkpoint_every: int = 0,
) -> tuple[Run, Trainer, float]:
    """Train the run of ``config`` into the folder ``out`` (``resume``: continue from its
    ``checkpoint.pt``); writes ``config.json``, the checkpoint(s) and ``metrics.json``, and with
    ``--validation`` ``best.pt``. Returns the run, the trainer and the training seconds."""
    run = Run(config)
    optimizer, scheduler = run.optimizer()
    source = run.batch_source()
    try:
        trainer = Trainer(
            run.model,
            run.objective,
            source,
            optimizer=optimizer,
            scheduler=scheduler,
            ema_decay=config.ema,
            seed=config.seed,
            device=config.device,
        )
        checkpoint = out / "checkpoint.pt"
        if resume:
            trainer.load(checkpoint)
        run.save_config(out)  # a resumed run records its execution options
        stopper = early_stopping(run, trainer, out, resume)
        start = time.perf_counter()
        state = trainer.fit(
            config.steps - trainer.step_count,
            callback=stopper,
            eval_every=config.val_every if stopper is not None else 0,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            progress=progress,
        )
    finally:
        if isinstance(source, PrefetchedBatches):
            source.close()
    seconds = time.perf_counter() - start
    tail = list(trainer.recent_losses)
    metrics: dict[str, object] = {
        "steps": trainer.step_count,
        "train_seconds": round(seconds, 2),
        "final_loss": sum(tail) / len(tail) if tail else math.nan,
    }
    if stopper is not None:
        record = stopper.stopper
        metrics["validation"] = {
            "points": config.validation,
            "best_nll_nats": record.best,
            "best_step": record.best_step,
            "stopped_early": state.stopped or record.stopped,
            "history": record.history,
        }
    write_text_atomic(out / "metrics.json", json.dumps(metrics, indent=2))
    return run, trainer, seconds


class SaveBest:
    """The early-stopping callback of a run: evaluate, write ``best.pt`` when improved."""

    def __init__(self, stopper: EarlyStopping, path: Path) -> None:
        self.stopper, self.path = stopper, path

    def __call__(self, trainer: Trainer) -> bool:
        before = self.stopper.best_step
        stop = self.stopper(trainer)
        if self.stopper.best_step != before and self.stopper.best_state is not None:
            # the flow's velocity wraps the model as "model": the model's own weights
            weights = {k.removeprefix("model."): v for k, v in self.stopper.best_state.items()}
            save_checkpoint(
                {
                    "format": "interpolants-best/1",
                    "ema": weights,
                    "step": self.stopper.best_step,
                    "early_stopping": self.stopper.state_dict(),
                },
                self.path,
            )
        return stop


def early_stopping(run: Run, trainer: Trainer, out: Path, resume: bool) -> SaveBest | None:
    """With ``--validation``: the callback keeping the weights of lowest validation NLL in
    ``best.pt`` (and stopping after ``--patience`` evaluations without improvement)."""
    config, best = run.config, out / BEST
    if not resume and best.exists():
        best.unlink()  # a stale record of another run
    if config.validation == 0:
        return None
    flow = run.flow(trainer.sampling_model)
    data = run.split("validation").to(trainer.device)
    stopper = EarlyStopping(flow, data, patience=config.patience or None)
    if resume and best.exists():
        stopper.load_state_dict(load_checkpoint(best)["early_stopping"])
    return SaveBest(stopper, best)
