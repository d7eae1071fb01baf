"""Facts about the environment recorded beside each run (commit, versions, machine)."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def git_commit(path: str | Path = ".") -> str | None:
    """The git commit of ``path``'s checkout (``+dirty`` when modified), or None."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    """The CPU model name (Linux ``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict[str, Any]:
    """Cores, CPU model and 1/5/15-minute load average: benchmark tables say how loaded the
    (possibly shared) machine was when they were measured."""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def environment_info() -> dict[str, Any]:
    """Package versions and machine description for reproducibility records."""
    import numpy
    import polars
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "polars": polars.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "commit": git_commit(Path(__file__).resolve().parent),
    }
    # the installed distribution's version, without importing torch_geometric (~2 s)
    from importlib.metadata import PackageNotFoundError, version

    try:
        info["torch_geometric"] = version("torch_geometric")
    except PackageNotFoundError:  # pragma: no cover - declared dependency
        info["torch_geometric"] = None
    return info
