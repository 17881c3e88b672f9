"""Run a worker script of this folder as 2 CPU processes under `torchrun` (gloo), one thread each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def torchrun_two_processes(script: str, *args: str) -> None:
    """`torchrun --standalone --nproc_per_node 2 tests/distributed/<script> ARGS`; fails with the processes' output."""
    root = str(HERE.parents[1])  # the workers import `tests.distributed.*` and this checkout's `trl_unified`
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        str(HERE / script),
    ]
    result = subprocess.run([*command, *args], env=env, check=False, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
