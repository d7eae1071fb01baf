"""Fast propagation with a cached, symmetric sparse adjacency (LightGCN, NGCF, ...).

Graph-convolutional recommenders spend nearly all of their training time in ``A @ X`` with a
fixed sparse ``A`` (the symmetric-normalised bipartite adjacency of
:meth:`~gnnrec.graph.data.TrainData.norm_adj`) and a dense ``X`` that requires grad. Autograd
through ``torch.sparse.mm`` computes the input gradient as ``Aᵀ @ grad``, which for a CSR
matrix means transposing it (a CSR → CSC conversion, i.e. a sort of all ``nnz`` entries)
on every backward pass. Because the normalised adjacency is symmetric, ``Aᵀ = A``, so
:class:`SymmetricSpMM` reuses the very same CSR tensor in the backward pass: no transpose,
no new sparse tensor per step.

Measured on ml-100k's training graph (2,625 nodes, 160k stored entries, d = 64, one CPU
thread; forward and backward through 3 layers, median of 40 runs, on a shared 2-core machine,
so only the ratios are meaningful):

==============================================  ===================  ==============
path                                            fwd + bwd, 3 layers  fwd, 3 layers
==============================================  ===================  ==============
``SymmetricSpMM`` on CSR (this module)          19-21 ms             6-9 ms
``torch.sparse.mm`` on CSR, autograd            59-61 ms             6-9 ms
``torch.sparse.mm`` on COO, autograd            66-72 ms             37-43 ms
``torch_geometric.utils.spmm`` on CSR           56-66 ms
``torch_geometric.utils.spmm`` on COO           52-68 ms
==============================================  ===================  ==============

A single CSR product is 2-4 ms (scipy's CSR product 2-7 ms; a dense ``[N, N]`` product
~50 ms; ``index_add_`` scatter ~200 ms). With two OpenMP threads on a machine whose cores
are busy with other processes, the same CSR product took 15-64 ms (threads waiting for
each other), so on a shared machine ``OMP_NUM_THREADS=1`` can be much faster.

On Gowalla's training graph (70,839 nodes, 1.62 M stored entries, d = 64, one thread, shared
machine): one CSR product 17-19 ms with ``torch.sparse.mm`` (scipy's CSR product 31-50 ms;
splitting the bipartite matrix into its user-item block ``R`` and ``Rᵀ`` 15-17 ms, no real
gain, so the single symmetric CSR stays). A LightGCN training step (3-layer forward +
backward: 6 products, the layer sums, the batch's gather and loss, Adam) took 260-290 ms on
one thread; profiling it showed more time around the products than in them:

* ``torch.use_deterministic_algorithms`` made torch NaN-fill every new tensor (products'
  results, gradient buffers): ~50 ms a step. :func:`gnnrec.utils.seed.seed_everything` now
  keeps determinism but switches that debugging fill off.
* ``torch.sparse.mm`` allocates, zero-fills and copies its result, and converts int64 CSR
  indices to MKL's int32 on every call: 27 ms per product against 15-17 ms for
  ``torch.addmm(buf, A, X, beta=0, out=buf)`` with int32 indices (:func:`spmm_into`; the
  adjacency is built with int32 indices).
* a separate ``cat`` of the user and item tables and a clone of it per layer mean.

Now a step is ~175 ms on one thread and ~100 ms on two (Gowalla epoch of 50 steps at batch
16384: 8.8 s and 5.0 s; it was 13-15 s on one thread), the six products being ~100 ms of the
one-thread step. At batch 2048 the paper's schedule is 396 steps per epoch, which is why
``experiments/lightgcn-gowalla.yaml`` trains with larger batches.

Functions here take the adjacency as given: the caller guarantees symmetry (it is checked
only by :func:`is_symmetric`, used in tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "LayerMean",
    "SymmetricSpMM",
    "edge_dropout",
    "gather_rows",
    "gather_stacked",
    "is_symmetric",
    "layer_mean",
    "propagate",
    "spmm_into",
    "stacked_base",
    "sym_spmm",
    "undirected_entry_ids",
]


class SymmetricSpMM(torch.autograd.Function):
    """``A @ X`` for a *symmetric* sparse ``A`` whose backward is ``A @ grad``.

    ``A`` itself gets no gradient (it is a constant of the graph).
    """

    @staticmethod
    def forward(ctx: Any, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adj = adj  # a constant: keep a reference, not a saved-tensor copy/version check
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor | None]:
        if not ctx.needs_input_grad[1]:
            return None, None
        # A symmetric: d(A X)/dX applied to grad is Aᵀ grad = A grad (same CSR, no transpose)
        return None, torch.sparse.mm(ctx.adj, grad.contiguous())


def sym_spmm(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``adj @ x`` for a symmetric sparse ``adj`` ``[N, N]`` and dense ``x`` ``[N, d]``.

    Uses :class:`SymmetricSpMM` when a gradient is needed and a plain ``torch.sparse.mm``
    otherwise (evaluation under ``torch.no_grad()``).
    """
    if x.requires_grad and torch.is_grad_enabled():
        return SymmetricSpMM.apply(adj, x)
    return torch.sparse.mm(adj, x)


def propagate(adj: torch.Tensor, x: torch.Tensor, num_layers: int) -> list[torch.Tensor]:
    """``[x, A x, A² x, ..., A^K x]`` (``K = num_layers``) for a symmetric sparse ``A``.

    Args:
        adj: symmetric sparse ``[N, N]`` (CSR preferred).
        x: dense ``[N, d]``.
        num_layers: ``K >= 0``.

    Returns:
        ``K + 1`` tensors ``[N, d]``, the ego input first.
    """
    out = [x]
    for _ in range(num_layers):
        out.append(sym_spmm(adj, out[-1]))
    return out


def spmm_into(adj: torch.Tensor, h: torch.Tensor, buf: torch.Tensor | None) -> torch.Tensor:
    """``adj @ h``, written into ``buf`` when given (CPU CSR), else a new tensor.

    ``torch.sparse.mm`` on a CPU CSR matrix allocates its result, zero-fills it and copies
    MKL's output into it (27 ms per product on Gowalla's graph, one thread);
    ``torch.addmm(buf, adj, h, beta=0, out=buf)`` lets MKL write into a reused buffer
    (15-17 ms; ``beta=0``: ``buf``'s old contents are ignored, NaN included).
    """
    if buf is None:
        return torch.sparse.mm(adj, h)
    return torch.addmm(buf, adj, h, beta=0.0, out=buf)


def _layer_mean(adj: torch.Tensor, parts: tuple[torch.Tensor, ...], num_layers: int) -> torch.Tensor:
    """``(x + A x + ... + A^K x) / (K + 1)`` with ``x = cat(parts)``.

    The concatenation is the output buffer (no separate copy of ``x``); on the CPU with a
    CSR ``A`` the layers go through two reused buffers (:func:`spmm_into`). ``x`` is needed
    only by the first product, so the layers are added into the output from the second
    product on.
    """
    out = torch.cat(parts)  # a new tensor even for one part
    if num_layers == 0:
        return out
    reuse = adj.layout == torch.sparse_csr and adj.device.type == "cpu"
    bufs = [torch.empty_like(out), torch.empty_like(out)] if reuse else [None, None]
    h = spmm_into(adj, out, bufs[0])  # A x: reads the output buffer while it still holds x
    for k in range(1, num_layers):
        nxt = spmm_into(adj, h, bufs[k % 2])
        out.add_(h)
        h = nxt
    out.add_(h)
    return out.div_(num_layers + 1)


class LayerMean(torch.autograd.Function):
    """LightGCN's propagation with layer-mean readout as one autograd node.

    ``P X`` with ``P = (I + A + ... + A^K) / (K + 1)``: a polynomial in a symmetric ``A``, so
    ``P`` is symmetric too and the backward pass is ``P`` applied to the gradient — the
    same routine, ``K`` sparse products. ``X`` is given as row blocks (``apply(adj, K,
    *parts)``, e.g. the user and item tables) and concatenated into the output buffer, so
    neither ``X`` nor its gradient is copied once more: the gradient comes back as row
    views of one buffer. Autograd through :func:`propagate` and a sum of the layers
    computes the same gradient but keeps every layer alive and allocates a fresh ``[N, d]``
    tensor per addition, gradient split and zero-fill (on Gowalla's 70,839 × 64 that was a
    third of a training step); here the layers are summed into one buffer in place, the
    products write into two reused buffers, and nothing but the adjacency is kept for the
    backward pass.
    """

    @staticmethod
    def forward(ctx: Any, adj: torch.Tensor, num_layers: int, *parts: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.adj, ctx.num_layers = adj, num_layers  # a constant: no saved-tensor copy
        ctx.sizes = [p.shape[0] for p in parts]
        return _layer_mean(adj, parts, num_layers)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        if not any(ctx.needs_input_grad[2:]):
            return (None, None, *([None] * len(ctx.sizes)))
        full = _layer_mean(ctx.adj, (grad.contiguous(),), ctx.num_layers)
        return (None, None, *full.split(ctx.sizes))


def layer_mean(
    adj: torch.Tensor, x: torch.Tensor | Sequence[torch.Tensor], num_layers: int
) -> torch.Tensor:
    """``mean(x, A x, ..., A^K x)`` for a symmetric sparse ``A`` (``K = num_layers``).

    ``x`` is one ``[N, d]`` tensor or its row blocks (concatenated, users first). Equal to
    the mean of :func:`propagate`'s outputs; uses :class:`LayerMean` when a gradient is
    needed.
    """
    parts = (x,) if isinstance(x, torch.Tensor) else tuple(x)
    if torch.is_grad_enabled() and any(p.requires_grad for p in parts):
        return LayerMean.apply(adj, num_layers, *parts)
    return _layer_mean(adj, parts, num_layers)


def stacked_base(emb: dict[str, torch.Tensor], num_users: int) -> torch.Tensor | None:
    """The ``[U + I, d]`` tensor whose row ranges are ``emb["user"]`` and ``emb["item"]``
    (users first), or None when they are not views of one tensor that way."""
    user, item = emb["user"], emb["item"]
    base = user._base
    if (
        base is not None
        and item._base is base
        and base.dim() == 2
        and base.shape[0] == num_users + item.shape[0]
        and user.data_ptr() == base.data_ptr()
        and item.data_ptr() == base[num_users:].data_ptr()
    ):
        return base
    return None


def gather_stacked(
    emb: dict[str, torch.Tensor], num_users: int, users: torch.Tensor, items: torch.Tensor
) -> torch.Tensor:
    """``cat([emb["user"][users], emb["item"][items.reshape(-1)]])`` ``[B + n, d]``, with one
    ``index_select`` when possible.

    ``index_select``'s backward is an ``index_add_`` (on the CPU much cheaper than the
    accumulating ``index_put_`` behind advanced indexing). When ``user`` and ``item`` are
    the two row ranges of one ``[U + I, d]`` tensor (:func:`stacked_base`: the ``encode``
    output of the propagation models), the rows are gathered from that tensor directly, so
    the backward pass writes one ``[U + I, d]`` gradient buffer instead of one per view
    plus their sum; otherwise each table is gathered and the rows concatenated.
    """
    base = stacked_base(emb, num_users)
    if base is None:
        return torch.cat([emb["user"].index_select(0, users), emb["item"].index_select(0, items.reshape(-1))])
    return base.index_select(0, torch.cat([users, items.reshape(-1) + num_users]))


def gather_rows(
    emb: dict[str, torch.Tensor], num_users: int, users: torch.Tensor, items: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(emb["user"][users], emb["item"][items])`` as two views of :func:`gather_stacked`'s
    rows. ``items`` may have any shape; its rows come back as ``[*items.shape, d]``."""
    rows = gather_stacked(emb, num_users, users, items)
    b = users.shape[0]
    return rows[:b], rows[b:].view(*items.shape, -1)


def undirected_entry_ids(adj: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Undirected-edge id of each stored entry of a symmetric CSR ``adj``.

    Entries ``(r, c)`` and ``(c, r)`` share an id, so masking by id keeps the matrix
    symmetric (see :func:`edge_dropout`).

    Returns:
        ``(ids [nnz] int64, num_edges)``.
    """
    crow, col = adj.crow_indices(), adj.col_indices()
    n = adj.shape[0]
    row = torch.repeat_interleave(torch.arange(n, device=col.device), crow.diff())
    key = torch.minimum(row, col) * n + torch.maximum(row, col)
    uniq, ids = torch.unique(key, return_inverse=True)
    return ids, int(uniq.numel())


def edge_dropout(
    adj: torch.Tensor,
    entry_ids: torch.Tensor,
    num_edges: int,
    p: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Drop each undirected edge of a symmetric CSR ``adj`` with probability ``p``.

    Kept entries are scaled by ``1 / (1 - p)`` (inverted dropout); dropped ones become
    explicit zeros, so the sparsity pattern (``crow``/``col``) is shared with ``adj`` and no
    sort is needed. The result is symmetric again.

    Args:
        adj: symmetric sparse CSR ``[N, N]``.
        entry_ids, num_edges: from :func:`undirected_entry_ids` of ``adj``.
        p: drop probability in ``[0, 1)``.
        generator: random generator (default: the global one).
    """
    if p <= 0:
        return adj
    vals = adj.values()
    keep = torch.rand(num_edges, device=vals.device, generator=generator) >= p
    new_vals = vals * keep[entry_ids].to(vals.dtype) / (1.0 - p)
    return torch.sparse_csr_tensor(
        adj.crow_indices(), adj.col_indices(), new_vals, size=adj.shape, check_invariants=False
    )


def is_symmetric(adj: torch.Tensor, atol: float = 0.0) -> bool:
    """Whether sparse (or dense) ``adj`` equals its transpose (up to ``atol``)."""
    dense = adj.to_dense() if adj.is_sparse or adj.layout != torch.strided else adj
    return bool(torch.allclose(dense, dense.T, atol=atol, rtol=0.0))
