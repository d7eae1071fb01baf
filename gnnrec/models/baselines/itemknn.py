"""Item-based k-nearest-neighbour collaborative filtering."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field

from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.models.base import EmbDict, ModelConfig, Recommender, register_model

# Elements materialised at once: (user, neighbour) terms in ``score_all``, (user, item)
# cells in ``score``.
_SCORE_CHUNK = 2**24


class ItemKNNConfig(ModelConfig):
    """Hyper-parameters of :class:`ItemKNN`."""

    k: int = Field(100, ge=1)  # neighbours kept per item (largest similarities)
    shrink: float = Field(10.0, ge=0)  # shrinkage added to the cosine denominator
    block_nnz: int = Field(2**23, ge=1)  # co-occurrence entries computed at once (~40 bytes each)


def item_similarity(
    pos_index: np.ndarray, num_users: int, num_items: int, k: int, shrink: float, block_nnz: int = 2**23
) -> sp.csr_matrix:
    r"""Top-``k`` shrunk cosine similarities between items, as a sparse ``[I, I]`` matrix.

    With :math:`X` the binary user×item matrix of ``pos_index``,
    :math:`\mathrm{sim}(j, i) = \frac{X_{:j}^\top X_{:i}}{\|X_{:j}\|\,\|X_{:i}\| + \text{shrink}}`
    for :math:`i \ne j`; row ``j`` keeps its ``k`` largest entries (ties: lower item index
    first). Rows are computed in blocks of items whose co-occurrence rows hold at most about
    ``block_nnz`` entries in total, so memory stays bounded and no dense ``I × I`` is formed.

    Args:
        pos_index: ``[2, P]`` (user, item) training pairs; duplicates count once.
        num_users: number of users ``U``.
        num_items: number of items ``I``.
        k: neighbours kept per item.
        shrink: shrinkage term (0 = plain cosine).
        block_nnz: memory bound of one block (entries of ``X_block^T X``).

    Returns:
        CSR matrix ``S`` with ``S[j, i] = sim(j, i)`` for the kept neighbours ``i`` of ``j``.
    """
    users = np.asarray(pos_index[0], dtype=np.int64)
    items = np.asarray(pos_index[1], dtype=np.int64)
    x = sp.csr_matrix((np.ones(users.shape[0]), (users, items)), shape=(num_users, num_items))
    x.sum_duplicates()
    x.data[:] = 1.0  # binary: repeated pairs count once
    xt = x.T.tocsr()  # [I, U]
    item_deg = np.diff(xt.indptr).astype(np.float64)
    user_deg = np.diff(x.indptr).astype(np.float64)
    norm = np.sqrt(item_deg)
    # Upper bound on the non-zeros of row j of X^T X: sum of the degrees of j's users.
    work = xt @ user_deg
    start_cum = np.cumsum(work) - work
    block_id = (start_cum // block_nnz).astype(np.int64)
    bounds = np.flatnonzero(np.diff(block_id)) + 1
    starts = np.r_[0, bounds]
    ends = np.r_[bounds, num_items]

    rows_out, cols_out, vals_out = [], [], []
    for a, b in zip(starts.tolist(), ends.tolist()):
        co = (xt[a:b] @ x).tocoo()  # co-occurrence counts of items a..b-1 with all items
        r = co.row.astype(np.int64) + a
        c = co.col.astype(np.int64)
        keep = r != c  # an item is not its own neighbour
        r, c, d = r[keep], c[keep], co.data[keep]
        sim = d / (norm[r] * norm[c] + shrink)
        # sort by row, then by decreasing similarity, then by item index (deterministic ties)
        order = np.lexsort((c, -sim, r))
        r, c, sim = r[order], c[order], sim[order]
        rank = np.arange(r.shape[0]) - np.searchsorted(r, r, side="left")
        top = rank < k
        rows_out.append(r[top])
        cols_out.append(c[top])
        vals_out.append(sim[top])
    if rows_out:
        rows, cols, vals = np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(vals_out)
    else:  # no items at all
        rows = cols = np.zeros(0, dtype=np.int64)
        vals = np.zeros(0)
    return sp.csr_matrix((vals, (rows, cols)), shape=(num_items, num_items))


def _expand(start: torch.Tensor, count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For CSR row slices ``[start, start + count)``: the owner (0..n-1) and the position of
    every element, concatenated (vectorised, no loop over rows)."""
    owner = torch.repeat_interleave(torch.arange(count.shape[0], device=count.device), count)
    offset = torch.repeat_interleave(start - (torch.cumsum(count, 0) - count), count)
    return owner, offset + torch.arange(owner.shape[0], device=count.device)


def _csr_tensors(m: sp.csr_matrix, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(indptr int64, indices int64, data float32) of a CSR matrix, on ``device``."""
    m = m.tocsr()
    m.sort_indices()
    return (
        torch.from_numpy(m.indptr.astype(np.int64)).to(device),
        torch.from_numpy(m.indices.astype(np.int64)).to(device),
        torch.from_numpy(m.data.astype(np.float32)).to(device),
    )


@register_model(
    "itemknn",
    config=ItemKNNConfig,
    description="Item-based kNN with shrunk cosine similarity and top-k neighbours (non-trainable).",
)
class ItemKNN(Recommender):
    r"""Item-based top-N recommendation with k nearest neighbours.

    Sarwar et al., "Item-based collaborative filtering recommendation algorithms", WWW 2001
    (https://doi.org/10.1145/371920.372071); Deshpande & Karypis, "Item-based top-N
    recommendation algorithms", TOIS 2004 (https://doi.org/10.1145/963770.963776).

    Each item ``j`` keeps its ``k`` most similar items (shrunk cosine, see
    :func:`item_similarity`); a user's score for item ``i`` is the sum of the similarities
    ``sim(j, i)`` over the items ``j`` in their training history for which ``i`` is among
    ``j``'s neighbours: ``score_all(u) = X[u] @ S``.

    Differences from the paper:
        * The history is binary (``TrainData.pos_index``), without per-event weights.
        * Similarity is cosine with an additive shrinkage term in the denominator (as in
          the ItemKNN-CF baseline of Ferrari Dacrema et al., RecSys 2019), which damps
          similarities supported by few co-occurrences; shrink = 0 gives plain cosine.
          Deshpande & Karypis also study a conditional-probability similarity (not here).
        * No row normalisation of the similarity matrix (Deshpande & Karypis normalise each
          item's neighbour similarities to sum to one).

    Args:
        meta: graph sizes.
        config: :class:`ItemKNNConfig` (``k``, ``shrink``, ``block_nnz``).

    Shapes:
        ``score``: ``[B]``; ``score_all``: ``[B, num_items]``.
    """

    trainable = False

    def __init__(self, meta: GraphMeta, config: ItemKNNConfig) -> None:
        super().__init__(meta)
        self.config = config
        # Sparse structures are plain attributes (not buffers): they are derived from the
        # training data in prepare() and moved to the data's device by encode().
        self.sim: sp.csr_matrix | None = None
        self._tensors: dict[str, torch.Tensor] = {}

    def prepare(self, data: TrainData) -> None:
        pairs = data.pos_index.detach().cpu().numpy()
        self.sim = item_similarity(
            pairs,
            self.meta.num_users,
            self.meta.num_items,
            k=self.config.k,
            shrink=self.config.shrink,
            block_nnz=self.config.block_nnz,
        )
        hist = sp.csr_matrix(
            (np.ones(pairs.shape[1], dtype=np.float32), (pairs[0], pairs[1])),
            shape=(self.meta.num_users, self.meta.num_items),
        )
        hist.sum_duplicates()
        sim_indptr, sim_items, sim_values = _csr_tensors(self.sim, data.device)
        hist_indptr, hist_items, _ = _csr_tensors(hist, data.device)
        self._tensors = {
            # CSR arrays as plain tensors: scoring uses index ops only (sparse CSR @ CSR on
            # CPU needs an MKL build of torch, which not every platform has)
            "sim_indptr": sim_indptr,
            "sim_items": sim_items,
            "sim_values": sim_values,
            "hist_indptr": hist_indptr,
            "hist_items": hist_items,
        }

    def encode(self, data: TrainData) -> EmbDict:
        if not self._tensors:
            raise RuntimeError("ItemKNN.encode called before prepare()")
        if self._tensors["hist_indptr"].device != data.device:
            self._tensors = {k: v.to(data.device) for k, v in self._tensors.items()}
        return dict(self._tensors)

    def score_all(self, emb: EmbDict, user_index: torch.Tensor) -> torch.Tensor:
        """``X[users] @ S`` by scattering each history item's neighbour list into the rows.

        Work and memory are proportional to (history entries × k), processed in chunks of
        at most ``2^24`` (user, neighbour) contributions, plus the ``[B, I]`` output.
        """
        num_items = self.meta.num_items
        b = user_index.shape[0]
        out = torch.zeros(b * num_items, device=user_index.device)
        h_indptr = emb["hist_indptr"]
        start = h_indptr[user_index]
        row, pos = _expand(start, h_indptr[user_index + 1] - start)  # history entries
        hist_item = emb["hist_items"][pos]
        s_indptr = emb["sim_indptr"]
        n_start = s_indptr[hist_item]
        n_count = s_indptr[hist_item + 1] - n_start  # neighbours of each history item
        # chunk boundaries over history entries so each chunk expands to <= _SCORE_CHUNK
        cum = torch.cumsum(n_count, 0).cpu()
        bounds = [0]
        while bounds[-1] < cum.shape[0]:
            done = int(cum[bounds[-1] - 1]) if bounds[-1] > 0 else 0
            nxt = int(torch.searchsorted(cum, done + _SCORE_CHUNK, right=True))
            bounds.append(max(nxt, bounds[-1] + 1))
        for lo, hi in pairwise(bounds):
            owner, npos = _expand(n_start[lo:hi], n_count[lo:hi])
            flat = row[lo:hi][owner] * num_items + emb["sim_items"][npos]
            out.index_add_(0, flat, emb["sim_values"][npos])
        return out.view(b, num_items)

    def score(self, emb: EmbDict, user_index: torch.Tensor, item_index: torch.Tensor) -> torch.Tensor:
        return self.score_from_rows(emb, user_index, item_index, _SCORE_CHUNK)

    def extra_repr(self) -> str:
        return f"num_items={self.meta.num_items}, k={self.config.k}, shrink={self.config.shrink}"
