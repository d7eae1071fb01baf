"""Seeding: one call makes a run reproducible."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool | None = None) -> torch.Generator:
    """Seed Python's ``random``, NumPy's legacy global RNG and torch (CPU and CUDA).

    gnnrec code passes generators explicitly; the global seeds only cover third-party code
    that draws from the global RNGs (and ``nn.Module`` parameter initialisation, which uses
    torch's global generator).

    Args:
        seed: the run's seed.
        deterministic: call ``torch.use_deterministic_algorithms(True, warn_only=True)``.
            ``None`` (default) enables it only when CUDA is unavailable: on CPU it costs
            nothing, while on CUDA several sparse/scatter kernels have no deterministic
            version and would warn on every call (and cuBLAS needs
            ``CUBLAS_WORKSPACE_CONFIG``, which a library should not set behind the user's
            back). With it, torch would also fill every uninitialised tensor
            (``torch.empty``, autograd's gradient buffers) with NaN
            (``torch.utils.deterministic.fill_uninitialized_memory``), a debugging aid for
            code that reads memory it never wrote; that is switched off here because it is
            not free: on Gowalla these fills took ~50 ms of a 220-270 ms LightGCN
            training step (one thread). gnnrec's code writes what it allocates, and
            the reproducibility tests (same seed, same metrics) would catch a read of
            uninitialised memory.

    Returns:
        A CPU ``torch.Generator`` seeded with ``seed`` (for shuffling and negative sampling).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # the legacy global RNG only accepts 32-bit seeds
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic is None:
        deterministic = not torch.cuda.is_available()
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
