"""SR-GNN against a loop-per-session re-statement of the reference code's procedure
(github.com/CRIPAC-DIG/SR-GNN, pytorch_code: ``Data.get_slice``, ``GNNCell``,
``compute_scores``), the narrow per-batch graph against a wide one, the epoch walk of
``epoch_fraction`` and the fused-Adam option."""

from __future__ import annotations

import numpy as np
import torch

from gnnrec.graph.data import GraphMeta
from gnnrec.models.sequential import SeqBatch
from gnnrec.models.sequential.srgnn import SRGNN, SRGNNConfig, session_graph
from gnnrec.temporal.sequences import last_items


def five_targets(window: torch.Tensor, length: torch.Tensor) -> SeqBatch:
    """A batch of the five test sessions with next items 1..5."""
    return SeqBatch(user=torch.arange(5), window=window, length=length, pos=torch.tensor([1, 2, 3, 4, 5]))

NUM_ITEMS = 11
# repeats (5 3 5), a self loop (2 2), a length-1 session, one as long as max_len
SESSIONS = [[5, 3, 5, 7], [2, 2, 9], [4], [0, 1, 2, 3, 4, 10, 1, 6], [8, 6, 8, 6, 1]]


def make_model(seed: int = 0, dim: int = 8, max_len: int = 8) -> SRGNN:
    meta = GraphMeta(
        num_users=1,
        num_items=NUM_ITEMS,
        num_categories=0,
        behaviors=("click",),
        target_behavior="click",
        add_reverse=True,
    )
    torch.manual_seed(seed)
    model = SRGNN(meta, SRGNNConfig(dim=dim, max_len=max_len))
    model.eval()
    return model


def windows(
    sessions: list[list[int]], max_len: int, pad: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-aligned ``[B, max_len]`` windows of the sessions (the model's input format)."""
    flat = torch.tensor([i for s in sessions for i in s])
    ends = torch.tensor(np.cumsum([len(s) for s in sessions]))
    starts = ends - torch.tensor([len(s) for s in sessions])
    return last_items(flat, starts, ends, max_len, pad)


def reference_scores(model: SRGNN, sessions: list[list[int]]) -> torch.Tensor:
    """Scores ``[B, num_items]`` computed the way the reference code does, one session at a
    time: ids shifted by one with 0 = padding (its ``n_node = num_items + 1``), inputs
    left-aligned and padded to a common length, nodes = ``np.unique`` of the padded input
    (so 0 is a node of every padded session), adjacency with repeated transitions counted
    once, in/out normalised, ``alias`` per position, hidden state gathered per position,
    last click at ``sum(mask) - 1``, scores against ``embedding[1:]``."""
    w = model.item_emb.weight.detach()
    assert w.shape[0] == model.meta.num_items  # no padding row in our table
    # reference table row 0 = padding (its own learned vector there; any value here, since
    # padding nodes are edgeless and masked), row i = our item i - 1
    table = torch.cat([torch.full((1, w.shape[1]), 0.37), w])
    len_max = max(len(s) for s in sessions) + 1  # every session padded at least once
    inputs = [[i + 1 for i in s] + [0] * (len_max - len(s)) for s in sessions]
    mask = torch.tensor([[1] * len(s) + [0] * (len_max - len(s)) for s in sessions])
    max_n = max(len(np.unique(u)) for u in inputs)
    items, adjs, aliases = [], [], []
    for u_input in inputs:
        node = np.unique(u_input)
        items.append(node.tolist() + [0] * (max_n - len(node)))
        a = np.zeros((max_n, max_n))
        for i in range(len(u_input) - 1):
            if u_input[i + 1] == 0:
                break
            a[
                np.flatnonzero(node == u_input[i])[0],
                np.flatnonzero(node == u_input[i + 1])[0],
            ] = 1
        indeg = a.sum(0)
        indeg[indeg == 0] = 1
        outdeg = a.sum(1)
        outdeg[outdeg == 0] = 1
        a_in = a / indeg  # a_in[u, v] = A[u, v] / indeg(v)
        a_out = a.T / outdeg  # a_out[v, u] = A[u, v] / outdeg(u)
        adjs.append(np.concatenate([a_in, a_out]).T)  # [n, 2n]: in-block, out-block
        aliases.append([int(np.flatnonzero(node == i)[0]) for i in u_input])
    adj = torch.tensor(np.stack(adjs), dtype=torch.float32)
    with torch.no_grad():
        hidden = table[torch.tensor(items)]
        n = adj.shape[1]
        for _ in range(model.config.steps):
            hidden = model.gnn_cell(adj[:, :, :n], adj[:, :, n : 2 * n], hidden)
        seq = torch.stack([hidden[b][torch.tensor(al)] for b, al in enumerate(aliases)])
        last = seq[torch.arange(len(sessions)), mask.sum(1) - 1]
        q1 = model.linear_one(last).unsqueeze(1)
        alpha = model.linear_three(torch.sigmoid(q1 + model.linear_two(seq)))
        glob = (alpha * seq * mask.unsqueeze(2).float()).sum(1)
        rep = model.linear_transform(torch.cat([glob, last], 1))
        return rep @ table[1:].T


def test_scores_match_the_reference_procedure() -> None:
    model = make_model()
    window, length = windows(SESSIONS, 8, model.pad)
    with torch.no_grad():
        ours = model.readout(*model._trim(window, length)) @ model.output_items().T
    ref = reference_scores(model, SESSIONS)
    assert ours.shape == (len(SESSIONS), NUM_ITEMS)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    # and the check can fail: a session read in another order scores differently
    with torch.no_grad():
        rev = (
            model.readout(*windows([s[::-1] for s in SESSIONS], 8, model.pad))
            @ model.output_items().T
        )
    assert (rev[0] - ref[0]).abs().max() > 1e-3


def test_narrow_graph_gives_the_same_scores_as_a_wide_one() -> None:
    model = make_model(seed=1, max_len=70)
    wide_window, length = windows(SESSIONS, 70, model.pad)  # [B, 70], mostly padding
    narrow_window, _ = model._trim(wide_window, length)
    assert narrow_window.shape[1] == 8
    nodes, _, a_in, _, _ = session_graph(narrow_window, length, model.pad)
    assert nodes.shape[1] == 7 and a_in.shape == (
        len(SESSIONS),
        7,
        7,
    )  # most distinct: 7
    with torch.no_grad():
        wide = model.readout(wide_window, length) @ model.output_items().T
        narrow = model.readout(narrow_window, length) @ model.output_items().T
    torch.testing.assert_close(narrow, wide, rtol=1e-6, atol=1e-6)
    # gradients too: one training loss on either width
    grads = []
    for win in (wide_window, narrow_window):
        model.zero_grad()
        model.loss(model.encode(None), five_targets(win, length)).backward()  # type: ignore[arg-type]
        grads.append(model.item_emb.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_epoch_fraction_walks_one_permutation_per_pass() -> None:
    model = make_model()
    model.config = model.config.model_copy(update={"epoch_fraction": 0.25})
    gen = torch.Generator().manual_seed(0)
    n = 10
    assert model.parts_per_pass(n) == 4
    parts = [model._epoch_order(n, gen).tolist() for _ in range(8)]
    assert [len(p) for p in parts] == [2, 3, 2, 3, 2, 3, 2, 3]
    first = [i for p in parts[:4] for i in p]
    second = [i for p in parts[4:] for i in p]
    assert sorted(first) == list(range(n)) and sorted(second) == list(range(n))
    assert first != second  # reshuffled at the start of the next pass
    # epoch_fraction 1: a full fresh permutation every epoch
    model.config = model.config.model_copy(update={"epoch_fraction": 1.0})
    assert sorted(model._epoch_order(n, gen).tolist()) == list(range(n))


def test_optimizer_options_are_accepted_by_adam() -> None:
    model = make_model()
    opts = model.optimizer_options()
    assert opts in ({}, {"fused": True})
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5, **opts)
    model.config = model.config.model_copy(update={"fused_adam": False})
    assert model.optimizer_options() == {}
    # one step moves the weights
    before = model.linear_one.weight.detach().clone()
    window, length = windows(SESSIONS, 8, model.pad)
    model.loss(model.encode(None), five_targets(window, length)).backward()  # type: ignore[arg-type]
    opt.step()
    assert not torch.equal(before, model.linear_one.weight)
