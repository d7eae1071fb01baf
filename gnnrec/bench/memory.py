"""Peak memory of one benchmark cell inside a long-lived process.

``ru_maxrss`` only grows over a process's life, so after the first big cell every later
cell would report the same number. :class:`PeakMemory` measures each cell on its own:

* on Linux it resets the kernel's peak-RSS counter (``VmHWM``) at the start of the cell by
  writing ``5`` to ``/proc/self/clear_refs`` (Linux ≥ 4.0) and reads ``VmHWM`` at the end:
  the exact peak resident set size of the process while the cell ran, no sampling;
* elsewhere (or when ``clear_refs`` is not writable) a background thread samples the RSS
  every ``interval`` seconds with psutil and keeps the maximum (may miss short spikes).

Both count the whole process: imports and the prepared data shared by the cells of a data
group are included, which is what a user running that one model would also pay. The
memory the cell added on top of what the process held when it started is reported as
``delta_mb``. On CUDA the peak of ``torch.cuda.max_memory_allocated`` is recorded too.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def current_rss_mb() -> float:
    """Resident set size of this process now, in MiB."""
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib / 1024
    import psutil

    return float(psutil.Process(os.getpid()).memory_info().rss) / 2**20


def _reset_hwm() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    hwm, rss = _status_kib("VmHWM"), _status_kib("VmRSS")
    # The reset sets VmHWM to the current RSS; if it did not move, it is not supported.
    return hwm is not None and rss is not None and hwm <= rss + 1024


class PeakMemory:
    """Context manager measuring a block's peak RSS (and CUDA peak), see the module docs.

    Attributes (after ``__exit__``):
        peak_mb: peak RSS of the process during the block, MiB.
        start_mb: RSS when the block started, MiB.
        delta_mb: ``peak_mb - start_mb``.
        cuda_peak_mb: peak CUDA memory allocated by torch during the block (None on CPU).
        method: ``"VmHWM"`` or ``"sampled"``.

    Example:
        >>> with PeakMemory() as mem:          # doctest: +SKIP
        ...     run_the_cell()
        >>> mem.peak_mb, mem.delta_mb
    """

    def __init__(self, interval: float = 0.05, *, use_hwm: bool = True) -> None:
        self.interval = interval
        self.use_hwm = use_hwm
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self.delta_mb = 0.0
        self.cuda_peak_mb: float | None = None
        self.method = "sampled"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cuda = False

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, current_rss_mb())

    def __enter__(self) -> PeakMemory:  # noqa: PYI034 (typing.Self is Python >= 3.11)
        self.start_mb = current_rss_mb()
        self.peak_mb = self.start_mb
        if self.use_hwm and _reset_hwm():
            self.method = "VmHWM"
        else:
            self.method = "sampled"
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, name="gnnrec-peak-rss", daemon=True)
            self._thread.start()
        self._cuda = _cuda_ready()
        if self._cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        end = current_rss_mb()
        if self.method == "VmHWM":
            hwm = _status_kib("VmHWM")
            self.peak_mb = max(end, hwm / 1024 if hwm is not None else end)
        else:
            self.peak_mb = max(self.peak_mb, end)
        self.delta_mb = max(0.0, self.peak_mb - self.start_mb)
        if self._cuda:
            import torch

            self.cuda_peak_mb = torch.cuda.max_memory_allocated() / 2**20

    def record(self) -> dict[str, Any]:
        """The measurements as a JSON-ready dict."""
        return {
            "peak_rss_mb": self.peak_mb,
            "start_rss_mb": self.start_mb,
            "delta_rss_mb": self.delta_mb,
            "cuda_peak_mb": self.cuda_peak_mb,
            "method": self.method,
        }


def _cuda_ready() -> bool:
    import sys

    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001  # pragma: no cover - defensive: CUDA probing must never fail a run
        return False
