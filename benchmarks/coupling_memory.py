r"""Peak memory of one ``OTCoupling`` call, for :mod:`coupling`'s large-n exact OT rows.

:func:`peak_memory` runs ``coupling.py --memory N KIND`` in a fresh process, where
:func:`_measure_memory` samples the resident set every 0.5 ms while the call runs and prints
its growth over the call as one line of JSON.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from coupling_problems import problem
from interpolants import OTCoupling


def peak_memory(n: int, kind: str) -> dict[str, float]:
    """Growth of the resident set over one ``OTCoupling`` call (peak while it runs, sampled
    every 0.5 ms, minus before), in a fresh process (MiB)."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("coupling.py")), "--memory", str(n), kind],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure_memory(n: int, kind: str) -> None:
    import threading

    torch.set_num_threads(1)
    OTCoupling()(*problem(kind, 256))  # imports and compiled kernels loaded before measuring
    x0, x1 = problem(kind, n)
    current = _rss_mib()
    peak = [current]
    done = threading.Event()

    def sample() -> None:  # the resident set, every 0.5 ms, while the call runs
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(5e-4)

    thread = threading.Thread(target=sample)
    thread.start()
    OTCoupling()(x0, x1)
    done.set()
    thread.join()
    peak[0] = max(peak[0], _rss_mib())
    print(json.dumps({"peak_growth_mib": peak[0] - current, "rss_before_mib": current}))


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
