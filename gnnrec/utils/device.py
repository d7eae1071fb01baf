"""Device choice (the only place that decides between CPU and CUDA)."""

from __future__ import annotations

import torch

from gnnrec.errors import ConfigError, GnnrecError


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a config's ``device`` value into a ``torch.device``.

    Args:
        name: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``.

    Returns:
        The device; a CUDA device always carries an explicit index, so it compares equal
        to the device of tensors placed on it.

    Raises:
        GnnrecError: CUDA was requested but is not available (or the index is out of range).
        ConfigError: ``name`` is not a device name.
    """
    text = name.strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise GnnrecError(
                f"device '{name}' requested but CUDA is not available (torch {torch.__version__}, "
                f"{build}); set device: cpu or device: auto"
            )
        _, _, idx = text.partition(":")
        if idx and not idx.isdigit():
            raise ConfigError(f"device: invalid CUDA device '{name}' (expected cuda or cuda:N)")
        index = int(idx) if idx else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise GnnrecError(
                f"device '{name}' requested but only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
        return torch.device("cuda", index)
    raise ConfigError(f"device: unknown device '{name}' (expected auto, cpu or cuda)")


def fused_adam_ok(device: torch.device) -> bool:
    """Whether this torch accepts ``Adam(fused=True)`` for parameters on ``device``.

    Fused Adam (one kernel for every parameter's update; CPU from torch 2.4) is the same
    update as the default one up to rounding. Models ask for it through their
    ``optimizer_options`` hook (``gnnrec.train.trainer``).
    """
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch: CUDA-only or no fused flag
        return False
    return True
