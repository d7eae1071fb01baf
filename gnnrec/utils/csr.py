"""Row gathers on CSR row pointers, shared by the evaluator (truth/mask rows) and models that
keep per-user lists in CSR form (e.g. ``mb_cascade``'s pair term)."""

from __future__ import annotations

import torch

__all__ = ["csr_row_entries"]


def csr_row_entries(indptr: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The stored entries of the selected CSR rows, without a per-row Python loop.

    Args:
        indptr: int64 ``[R + 1]`` CSR row pointers.
        rows: int64 ``[B]`` rows to take (same device).

    Returns:
        ``(row_of, entry)``: for each entry of the selected rows, its position in ``rows``
        (ascending) and its index into the CSR ``indices``/``values`` arrays (CSR order within
        a row).
    """
    start = indptr[rows]
    length = indptr[rows + 1] - start
    total = int(length.sum())
    dev = indptr.device
    row_of = torch.repeat_interleave(torch.arange(rows.shape[0], device=dev), length, output_size=total)
    # position of each entry inside its row: global index minus the row's offset
    offset = torch.cumsum(length, 0) - length
    first = torch.repeat_interleave(start - offset, length, output_size=total)
    return row_of, first + torch.arange(total, device=dev)
