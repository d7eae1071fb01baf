"""Fixtures of the sweep tests: a tiny sweep config and a throwaway PostgreSQL server.

``pg_url`` starts PostgreSQL with ``scripts/postgres.sh`` (installs Debian's package when the
binaries are missing and we are root) on a free port of 127.0.0.1 for the test session and
removes it afterwards. When it cannot be started the tests using it are skipped with the
reason — unless ``GNNREC_REQUIRE_PG=1`` (CI), where that is a failure.
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "postgres.sh"

#: A sweep over mf_bpr on a tiny synthetic log: a trial takes about a second.
TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "threads": 1,
    "device": "cpu",
    "data": {
        "dataset": "synthetic",
        "synthetic": {"num_users": 60, "num_items": 80, "num_categories": 4, "events_per_user": 15.0},
    },
    "split": {"mode": "random", "target_behavior": "buy"},
    "model": {"name": "mf_bpr", "params": {"dim": 8}},
    "train": {
        "epochs": 2,
        "batch_size": 256,
        "lr": 0.01,
        "patience": 0,
        "monitor": "ndcg@10",
        "positives": "all",
    },
    "eval": {"ks": [10], "metrics": ["recall", "ndcg"]},
    "sweep": {
        "metric": "ndcg@10",
        "trials": 3,
        "seed": 0,
        "pruner": "none",
        "params": {
            "train.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-1, "log": True},
            "model.params.dim": {"type": "categorical", "choices": [4, 8]},
        },
    },
}


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture
def tiny_cfg() -> dict[str, Any]:
    """A fresh deep copy of :data:`TINY` to edit."""
    return copy.deepcopy(TINY)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a PostgreSQL database on 127.0.0.1 for this test session."""
    required = os.environ.get("GNNREC_REQUIRE_PG") == "1"

    def unavailable(reason: str) -> None:
        if required:
            pytest.fail(f"PostgreSQL is required (GNNREC_REQUIRE_PG=1) but {reason}", pytrace=False)
        pytest.skip(f"PostgreSQL not available: {reason}")

    try:
        import psycopg2  # noqa: F401
    except ImportError:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            unavailable("no PostgreSQL driver (pip install psycopg2-binary, in the dev extra)")
    if shutil.which("bash") is None:
        unavailable("bash not found")
    # The server runs as the postgres user, which must reach the cluster folder: pytest's and
    # mkdtemp's folders are 0700, so use a world-searchable parent (/tmp) and open ours.
    parent = "/tmp" if os.path.isdir("/tmp") else None
    base = Path(tempfile.mkdtemp(prefix="gnnrec-pg-", dir=parent))
    base.chmod(0o755)
    cluster = base / "cluster"
    try:
        proc = subprocess.run(
            ["bash", str(SCRIPT), "start", str(cluster), str(_free_port())],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        shutil.rmtree(base, ignore_errors=True)
        unavailable(f"scripts/postgres.sh could not run: {err}")
    if proc.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        unavailable(f"scripts/postgres.sh start failed: {last}")
    url = proc.stdout.strip().splitlines()[-1]
    try:
        yield url
    finally:
        subprocess.run(
            ["bash", str(SCRIPT), "stop", str(cluster)], capture_output=True, timeout=120, check=False
        )
        shutil.rmtree(base, ignore_errors=True)
