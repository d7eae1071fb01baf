"""Fresh, timestamped output directories (no heavy imports: CLI commands that never touch
torch use it too)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def make_run_dir(parent: str | Path, name: str) -> Path:
    """``<parent>/<name>-<YYYYmmdd-HHMMSS>[-n]``, created fresh."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}")
    path.mkdir(parents=True)
    return path
