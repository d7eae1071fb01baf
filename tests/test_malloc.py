"""gnnrec.utils.malloc: glibc allocator thresholds for training runs."""

from __future__ import annotations

import platform
import resource
from pathlib import Path

import pytest
import torch

from gnnrec.cli import main
from tests.test_e2e import ROOT, TINY

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt thresholds are glibc-specific")
def test_tuned_malloc_reuses_freed_blocks() -> None:
    from gnnrec.utils.malloc import tune_malloc

    assert tune_malloc() is True
    assert tune_malloc() is True  # idempotent
    for _ in range(20):  # warm up: the heap grows (first touches fault) until blocks recycle
        torch.ones(10 << 20).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(30):
        torch.ones(10 << 20).sum()  # 40 MiB blocks, allocated and freed
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # fewer than one block's pages (10,240) in 30 rounds: the freed block is reused. With
    # glibc's defaults a block above its 32 MiB mmap ceiling is a fresh mapping every
    # round: 30 x 10,240 faults.
    assert faults < 5000, faults


@pytest.mark.parametrize("setting", ["tuned", "system"])
def test_runner_applies_cpu_malloc(setting: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gnnrec.utils.malloc as malloc

    calls: list[int] = []
    monkeypatch.setattr(malloc, "tune_malloc", lambda: calls.append(1) or True)
    sets = [x for s in [*TINY, "train.epochs=1", f"cpu_malloc={setting}"] for x in ("--set", s)]
    assert main(["run", str(ROOT / "experiments/mf_bpr-synthetic.yaml"), *sets, "--out", str(tmp_path / "r"), "-q"]) == 0
    assert len(calls) == (1 if setting == "tuned" else 0)
