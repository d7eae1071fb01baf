"""LightGCN, NGCF and the shared symmetric propagation helpers, on hand-computed graphs.

The 2-user x 3-item graph used throughout (nodes: users first, then items)::

    u0 - i0, u0 - i1, u1 - i1, u1 - i2

Degrees: u0 2, u1 2, i0 1, i1 2, i2 1, so the normalised adjacency entries
1 / sqrt(d_u d_i) are: (u0,i0) = 1/sqrt2, (u0,i1) = 1/2, (u1,i1) = 1/2, (u1,i2) = 1/sqrt2.

With one-dimensional embeddings x = (u0, u1, i0, i1, i2) = (1, 2, 3, 4, 5):

    A x   = (3/sqrt2 + 4/2,  4/2 + 5/sqrt2,  1/sqrt2,  1/2 + 2/2,  2/sqrt2)
          = (2 + 3/sqrt2,    2 + 5/sqrt2,    1/sqrt2,  3/2,        sqrt2)
    A^2 x = (1/sqrt2 * 1/sqrt2 + 1/2 * 3/2,          -> 1/2 + 3/4          = 5/4
             1/2 * 3/2 + 1/sqrt2 * sqrt2,            -> 3/4 + 1            = 7/4
             1/sqrt2 * (2 + 3/sqrt2),                -> sqrt2 + 3/2
             1/2 * (2 + 3/sqrt2) + 1/2 * (2 + 5/sqrt2) -> 2 + 4/sqrt2    = 2 + 2 sqrt2
             1/sqrt2 * (2 + 5/sqrt2))                -> sqrt2 + 5/2
"""

from __future__ import annotations

import math

import pytest
import torch

from gnnrec.config import ModelSpec
from gnnrec.errors import ConfigError
from gnnrec.graph.data import GraphMeta, TrainData
from gnnrec.losses import bpr
from gnnrec.models import PairBatch, build_model
from gnnrec.models.encoders.lightgcn import LightGCN
from gnnrec.models.encoders.ngcf import NGCF
from gnnrec.models.encoders.propagation import (
    LayerMean,
    SymmetricSpMM,
    edge_dropout,
    gather_rows,
    is_symmetric,
    layer_mean,
    propagate,
    spmm_into,
    stacked_base,
    sym_spmm,
    undirected_entry_ids,
)

R2 = math.sqrt(2.0)
X = [1.0, 2.0, 3.0, 4.0, 5.0]
AX = [2 + 3 / R2, 2 + 5 / R2, 1 / R2, 1.5, R2]
A2X = [1.25, 1.75, R2 + 1.5, 2 + 2 * R2, R2 + 2.5]


def make_data(
    edges: dict[str, list[tuple[int, int]]], num_users: int, num_items: int, target: str = "buy"
) -> TrainData:
    ei = {b: torch.tensor(p, dtype=torch.long).T.contiguous().view(2, -1) for b, p in edges.items()}
    meta = GraphMeta(num_users, num_items, 1, tuple(edges), target)
    return TrainData(
        meta=meta,
        edge_index=ei,
        edge_ts={b: torch.zeros(e.shape[1], dtype=torch.long) for b, e in ei.items()},
        edge_count={b: torch.ones(e.shape[1], dtype=torch.long) for b, e in ei.items()},
        pos_index=ei[target],
        item_category=torch.zeros(num_items, dtype=torch.long),
    )


@pytest.fixture
def small() -> TrainData:
    return make_data({"buy": [(0, 0), (0, 1), (1, 1), (1, 2)]}, 2, 3)


def random_data(seed: int, num_users: int = 12, num_items: int = 15, num_edges: int = 50) -> TrainData:
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, num_users, (num_edges,), generator=g)
    i = torch.randint(0, num_items, (num_edges,), generator=g)
    return make_data({"buy": list(zip(u.tolist(), i.tolist()))}, num_users, num_items)


# ---------------------------------------------------------------- propagation helpers
def test_norm_adj_of_the_small_graph(small: TrainData) -> None:
    a = small.norm_adj().to_dense()
    expected = torch.zeros(5, 5)
    for (r, c), v in {(0, 2): 1 / R2, (0, 3): 0.5, (1, 3): 0.5, (1, 4): 1 / R2}.items():
        expected[r, c] = expected[c, r] = v
    torch.testing.assert_close(a, expected)
    assert is_symmetric(small.norm_adj())


def test_propagate_exact_values(small: TrainData) -> None:
    x = torch.tensor(X).view(5, 1)
    layers = propagate(small.norm_adj(), x, 2)
    assert len(layers) == 3
    torch.testing.assert_close(layers[0], x)
    torch.testing.assert_close(layers[1].view(-1), torch.tensor(AX))
    torch.testing.assert_close(layers[2].view(-1), torch.tensor(A2X))


def test_symmetric_spmm_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(0)
    dense = torch.rand(7, 7, generator=g, dtype=torch.float64)
    dense = (dense + dense.T) * (torch.rand(7, 7, generator=g, dtype=torch.float64) > 0.5)
    dense = dense + dense.T  # symmetric with a random sparsity pattern
    adj = dense.to_sparse_csr()
    x = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: SymmetricSpMM.apply(adj, t), (x,))


def test_custom_backward_equals_dense_autograd() -> None:
    data = random_data(1)
    adj = data.norm_adj()
    dense = adj.to_dense()
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(adj.shape[0], 4, generator=g)
    w = torch.randn(adj.shape[0], 4, generator=g)  # an arbitrary upstream gradient
    xs = x0.clone().requires_grad_(True)
    xd = x0.clone().requires_grad_(True)
    out_s = torch.stack(propagate(adj, xs, 3)).sum(0)
    hd, out_d = xd, xd
    for _ in range(3):
        hd = dense @ hd
        out_d = out_d + hd
    torch.testing.assert_close(out_s, out_d, rtol=1e-5, atol=1e-6)
    (out_s * w).sum().backward()
    (out_d * w).sum().backward()
    torch.testing.assert_close(xs.grad, xd.grad, rtol=1e-5, atol=1e-6)
    assert out_s.grad_fn is not None


@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_layer_mean_gradcheck_and_equals_the_mean_of_propagate(num_layers: int) -> None:
    g = torch.Generator().manual_seed(4)
    dense = torch.rand(6, 6, generator=g, dtype=torch.float64)
    dense = dense * (torch.rand(6, 6, generator=g, dtype=torch.float64) > 0.4)
    adj = (dense + dense.T).to_sparse_csr()
    x = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: LayerMean.apply(adj, num_layers, t), (x,))
    # given as row blocks (users, items): the same function of the concatenation
    top, bottom = x[:2].detach().clone().requires_grad_(), x[2:].detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: LayerMean.apply(adj, num_layers, a, b), (top, bottom))
    w = torch.randn(6, 3, generator=g, dtype=torch.float64)
    ref = torch.stack(propagate(adj, x, num_layers)).mean(0)
    (gr,) = torch.autograd.grad((ref * w).sum(), x)
    out = layer_mean(adj, x, num_layers)
    (go,) = torch.autograd.grad((out * w).sum(), x)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(go, gr)
    out2 = layer_mean(adj, [top, bottom], num_layers)
    g_top, g_bottom = torch.autograd.grad((out2 * w).sum(), (top, bottom))
    torch.testing.assert_close(out2, ref)
    torch.testing.assert_close(torch.cat([g_top, g_bottom]), gr)
    with torch.no_grad():  # evaluation: the same values without an autograd node
        plain = layer_mean(adj, x, num_layers)
    assert plain.grad_fn is None
    torch.testing.assert_close(plain, ref.detach())
    assert torch.equal(x, x.detach().clone())  # the input is not written to
    # a COO matrix takes the allocating torch.sparse.mm path: the same values
    torch.testing.assert_close(layer_mean(adj.to_sparse_coo(), x.detach(), num_layers), ref.detach())


def testspmm_into_a_reused_buffer_ignores_its_old_contents() -> None:
    g = torch.Generator().manual_seed(6)
    dense = torch.rand(5, 5, generator=g) * (torch.rand(5, 5, generator=g) > 0.5)
    adj = (dense + dense.T).to_sparse_csr()
    x = torch.randn(5, 4, generator=g)
    buf = torch.full((5, 4), float("nan"))
    out = spmm_into(adj, x, buf)
    assert out.data_ptr() == buf.data_ptr()
    torch.testing.assert_close(out, (dense + dense.T) @ x)  # beta = 0: NaN not propagated


def test_gather_rows_from_the_stacked_output_or_separate_tables() -> None:
    g = torch.Generator().manual_seed(5)
    out = torch.randn(7, 3, generator=g, requires_grad=True)  # 3 users, 4 items
    stacked = {"user": out[:3], "item": out[3:]}
    separate = {"user": out[:3] * 1.0, "item": out[3:] * 1.0}
    assert stacked_base(stacked, 3) is out and stacked_base(separate, 3) is None
    assert stacked_base({"user": out[:3], "item": out[4:]}, 3) is None  # not the rows after the users
    users, items = torch.tensor([2, 0, 2]), torch.tensor([[1, 3], [0, 0], [2, 1]])
    w_u, w_i = torch.randn(3, 3, generator=g), torch.randn(3, 2, 3, generator=g)
    grads = []
    for emb in (stacked, separate):
        u, i = gather_rows(emb, 3, users, items)
        assert u.shape == (3, 3) and i.shape == (3, 2, 3)
        torch.testing.assert_close(u, out[users])
        torch.testing.assert_close(i, out[items + 3])
        (gr,) = torch.autograd.grad((u * w_u).sum() + (i * w_i).sum(), out)
        grads.append(gr)
    torch.testing.assert_close(grads[0], grads[1])


def test_sym_spmm_without_grad_is_plain(small: TrainData) -> None:
    x = torch.ones(5, 2, requires_grad=True)
    with torch.no_grad():
        y = sym_spmm(small.norm_adj(), x)
    assert y.grad_fn is None
    y2 = sym_spmm(small.norm_adj(), x)
    assert type(y2.grad_fn).__name__ == "SymmetricSpMMBackward"
    torch.testing.assert_close(y, y2.detach())


def test_edge_dropout_keeps_symmetry_and_scales() -> None:
    adj = random_data(3, 30, 40, 400).norm_adj()
    ids, num_edges = undirected_entry_ids(adj)
    assert num_edges * 2 == adj.values().numel()  # bipartite: every edge stored twice
    gen = torch.Generator().manual_seed(0)
    out = edge_dropout(adj, ids, num_edges, 0.25, generator=gen)
    assert is_symmetric(out)
    v, v0 = out.values(), adj.values()
    kept = v != 0
    torch.testing.assert_close(v[kept], v0[kept] / 0.75)
    assert 0.15 < 1 - kept.float().mean().item() < 0.35  # about p of the edges dropped
    assert torch.equal(out.crow_indices(), adj.crow_indices())
    assert edge_dropout(adj, ids, num_edges, 0.0) is adj


# ---------------------------------------------------------------- LightGCN
def _lightgcn(data: TrainData, **params: object) -> LightGCN:
    model = build_model(ModelSpec(name="lightgcn", params=dict(params)), data.meta)
    assert isinstance(model, LightGCN)
    model.prepare(data)
    return model


def test_lightgcn_fused_adam_option_is_the_same_update(small: TrainData) -> None:
    plain, fused = _lightgcn(small, dim=4), _lightgcn(small, dim=4, fused_adam=True)
    assert plain.optimizer_options() == {}
    if not fused.optimizer_options():
        pytest.skip("this torch has no fused CPU Adam")
    assert fused.optimizer_options() == {"fused": True}
    fused.load_state_dict(plain.state_dict())
    start = plain.user_emb.weight.detach().clone()
    batch = PairBatch(user=torch.tensor([0, 1]), pos=torch.tensor([0, 2]), neg=torch.tensor([[1], [1]]))
    for model in (plain, fused):
        opt = torch.optim.Adam(model.parameters(), lr=0.1, **model.optimizer_options())
        for _ in range(3):
            opt.zero_grad()
            model.loss(model.encode(small), batch).backward()
            opt.step()
    assert not torch.equal(plain.user_emb.weight, start)  # the steps moved the weights
    torch.testing.assert_close(fused.user_emb.weight, plain.user_emb.weight)
    torch.testing.assert_close(fused.item_emb.weight, plain.item_emb.weight)


def test_lightgcn_layer_mean_exact(small: TrainData) -> None:
    model = _lightgcn(small, dim=1, num_layers=2)
    with torch.no_grad():
        model.user_emb.weight.copy_(torch.tensor([[1.0], [2.0]]))
        model.item_emb.weight.copy_(torch.tensor([[3.0], [4.0], [5.0]]))
        emb = model.encode(small)
    mean = [(a + b + c) / 3 for a, b, c in zip(X, AX, A2X)]
    torch.testing.assert_close(emb["user"].view(-1), torch.tensor(mean[:2]))
    torch.testing.assert_close(emb["item"].view(-1), torch.tensor(mean[2:]))
    # s(u0, i1) = e_u0 * e_i1
    s = model.score(emb, torch.tensor([0]), torch.tensor([1]))
    torch.testing.assert_close(s, torch.tensor([mean[0] * mean[3]]))
    # K = 0 is plain matrix factorisation
    model0 = _lightgcn(small, dim=1, num_layers=0)
    model0.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model0.encode(small)["item"].view(-1), torch.tensor(X[2:]))


def test_lightgcn_regularization_by_hand(small: TrainData) -> None:
    # reg * (||u0||^2 + ||i1||^2 + ||i2||^2) / 2 / B = 0.5 * (5 + 9 + 2) / 2 / 1 = 4
    for layers in (0, 3):  # on the *ego* embeddings: independent of propagation
        model = _lightgcn(small, dim=2, num_layers=layers, reg=0.5)
        with torch.no_grad():
            model.user_emb.weight.copy_(torch.tensor([[1.0, 2.0], [7.0, 7.0]]))
            model.item_emb.weight.copy_(torch.tensor([[5.0, 5.0], [0.0, 3.0], [1.0, 1.0]]))
        batch = PairBatch(torch.tensor([0]), torch.tensor([1]), torch.tensor([[2]]))
        emb = model.encode(small)
        assert model.regularization(emb, batch).item() == pytest.approx(4.0)
        # the total loss is BPR over the propagated scores plus that term
        pos = model.score(emb, batch.user, batch.pos)
        neg = model.score(emb, batch.user, batch.neg.view(-1)).view(1, 1)
        assert model.loss(emb, batch).item() == pytest.approx(bpr(pos, neg).item() + 4.0, rel=1e-6)
    # B = 2, two negatives each: 0.5 * (5 + 98 + 9 + 50 + 2 + 2 + 50 + 9) / 2 / 2
    batch = PairBatch(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([[2, 0], [2, 1]]))
    assert model.regularization(model.encode(small), batch).item() == pytest.approx(0.5 * 225 / 4)
    assert _lightgcn(small, reg=0.0).regularization({}, batch).item() == 0.0


def test_lightgcn_init_std_and_repr(small: TrainData) -> None:
    torch.manual_seed(0)
    big = make_data({"buy": [(0, 0)]}, 400, 500)
    model = _lightgcn(big, dim=64)
    assert model.user_emb.weight.std().item() == pytest.approx(0.1, rel=0.05)
    assert "num_layers=3" in repr(model) and "reg=0.0001" in repr(model)


def test_lightgcn_behaviors_select_the_graph() -> None:
    both = make_data({"view": [(0, 2), (1, 0)], "buy": [(0, 0), (0, 1), (1, 1), (1, 2)]}, 2, 3)
    only_buy = make_data({"buy": [(0, 0), (0, 1), (1, 1), (1, 2)]}, 2, 3)
    torch.manual_seed(0)
    m_sel = _lightgcn(both, dim=4, behaviors=["buy"])
    m_all = _lightgcn(both, dim=4)
    m_ref = _lightgcn(only_buy, dim=4)
    m_all.load_state_dict(m_sel.state_dict())
    m_ref.load_state_dict(m_sel.state_dict())
    with torch.no_grad():
        sel, ref, allb = m_sel.encode(both), m_ref.encode(only_buy), m_all.encode(both)
    torch.testing.assert_close(sel["item"], ref["item"])
    assert not torch.allclose(allb["item"], ref["item"])
    with pytest.raises(ConfigError, match="model.params.behaviors: behaviour 'cart'"):
        _lightgcn(both, behaviors=["cart"])
    with pytest.raises(ConfigError, match="num_layers"):
        _lightgcn(both, num_layers=-1)


def test_lightgcn_gradient_reaches_every_row_of_the_batch_neighbourhood(small: TrainData) -> None:
    model = _lightgcn(small, dim=3, num_layers=1, reg=0.0)
    emb = model.encode(small)
    batch = PairBatch(torch.tensor([0]), torch.tensor([0]), torch.tensor([[2]]))
    model.loss(emb, batch).backward()
    g = model.item_emb.weight.grad
    assert g is not None
    # one layer: e_u0 mixes u0, i0, i1, so item 1 (not in the batch) gets a gradient too
    assert g[1].abs().sum() > 0
    assert model.user_emb.weight.grad[1].abs().sum() > 0  # u1 feeds e_i2 (the negative)


# ---------------------------------------------------------------- NGCF
def _ngcf(data: TrainData, **params: object) -> NGCF:
    model = build_model(ModelSpec(name="ngcf", params=dict(params)), data.meta)
    assert isinstance(model, NGCF)
    model.prepare(data)
    return model


def test_ngcf_output_dim_is_ego_plus_layers(small: TrainData) -> None:
    model = _ngcf(small, dim=8, layers=[4, 6])
    model.eval()
    with torch.no_grad():
        emb = model.encode(small)
    assert emb["user"].shape == (2, 8 + 4 + 6)
    assert emb["item"].shape == (3, 18)
    assert model.out_dim == 18
    # each propagated block is L2-normalised per row
    torch.testing.assert_close(emb["item"][:, 8:12].norm(dim=1), torch.ones(3))
    torch.testing.assert_close(emb["item"][:, 12:].norm(dim=1), torch.ones(3))


def test_ngcf_matches_a_dense_reference() -> None:
    data = random_data(4, 6, 7, 20)
    torch.manual_seed(0)
    model = _ngcf(data, dim=5, layers=[3, 4], mess_dropout=0.3)
    model.eval()  # no message dropout in evaluation
    with torch.no_grad():
        emb = model.encode(data)
        lap = data.norm_adj().to_dense()
        eye = torch.eye(lap.shape[0])
        h = torch.cat([model.user_emb.weight, model.item_emb.weight])
        outs = [h]
        for w1, w2 in zip(model.w_sum, model.w_bi):
            z = (lap + eye) @ h @ w1.weight.T + w1.bias + ((lap @ h) * h) @ w2.weight.T + w2.bias
            h = torch.nn.functional.leaky_relu(z, 0.2)
            h = h / h.norm(dim=1, keepdim=True).clamp_min(1e-12)
            outs.append(h)
        ref = torch.cat(outs, 1)
    torch.testing.assert_close(torch.cat([emb["user"], emb["item"]]), ref, rtol=1e-5, atol=1e-6)


def test_ngcf_regularization_by_hand(small: TrainData) -> None:
    emb = {
        "user": torch.tensor([[3.0, 4.0], [1.0, 0.0]]),
        "item": torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]]),
    }
    batch = PairBatch(torch.tensor([0]), torch.tensor([0]), torch.tensor([[1]]))
    # RecBole's EmbLoss: reg * (||u|| + ||i+|| + ||i-||) / B = 0.1 * (5 + 1 + 2) / 1
    assert _ngcf(small, reg=0.1).regularization(emb, batch).item() == pytest.approx(0.8)
    # paper code: reg * (||u||^2 + ||i+||^2 + ||i-||^2) / 2 / B = 0.1 * 30 / 2
    assert _ngcf(small, reg=0.1, reg_pow=True).regularization(emb, batch).item() == pytest.approx(1.5)
    # norms are over the whole batch matrix: B = 2 -> (sqrt(25 + 1) + sqrt(1 + 4) + sqrt(4 + 0)) / 2
    batch2 = PairBatch(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([[1], [2]]))
    value = _ngcf(small, reg=1.0).regularization(emb, batch2).item()
    assert value == pytest.approx((math.sqrt(26) + math.sqrt(5) + 2.0) / 2)


def test_ngcf_dropouts_only_in_training() -> None:
    data = random_data(5, 10, 12, 40)
    torch.manual_seed(0)
    model = _ngcf(data, dim=4, layers=[4], node_dropout=0.5, mess_dropout=0.5)
    model.train()
    a, b = model.encode(data)["item"], model.encode(data)["item"]
    assert not torch.allclose(a, b)  # fresh node and message dropout per call
    model.eval()
    with torch.no_grad():
        c, d = model.encode(data)["item"], model.encode(data)["item"]
    torch.testing.assert_close(c, d, rtol=0, atol=0)
    # the dropped adjacency stays symmetric, so the custom backward is still exact
    model.train()
    adj = model._adjacency(data)
    assert is_symmetric(adj) and (adj.values() == 0).any()


def test_ngcf_gradients_reach_weights(small: TrainData) -> None:
    torch.manual_seed(0)
    model = _ngcf(small, dim=4, layers=[4, 4], mess_dropout=0.0)
    model.train()
    batch = PairBatch(torch.tensor([0, 1]), torch.tensor([0, 2]), torch.tensor([[2], [0]]))
    model.loss(model.encode(small), batch).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("reg_pow", [False, True])
@pytest.mark.parametrize("num_neg", [1, 2])  # 1: the fused BPR + penalty node (_BPRNormLoss)
@pytest.mark.parametrize("views", [True, False])  # rows gathered from encode's base tensor, or not
def test_ngcf_loss_equals_the_generic_loss_with_gradients(reg_pow: bool, num_neg: int, views: bool) -> None:
    from gnnrec.models.base import PairBatch, Recommender

    data = random_data(5, 10, 12, 40)
    torch.manual_seed(0)
    model = _ngcf(data, dim=6, layers=[4, 4], reg=0.3, reg_pow=reg_pow)
    model.eval()  # no dropout: both losses see the same embeddings
    batch = PairBatch(
        user=torch.tensor([0, 3, 3, 9]),
        pos=torch.tensor([1, 2, 2, 11]),
        neg=torch.tensor([[4, 5], [0, 1], [7, 7], [2, 3]])[:, :num_neg],
    )

    def encode() -> dict[str, torch.Tensor]:
        emb = model.encode(data)
        return emb if views else {k: v * 1.0 for k, v in emb.items()}  # separate tensors

    grads = []
    for loss_fn in (model.loss, lambda e, b: Recommender.loss(model, e, b)):
        model.zero_grad()
        value = loss_fn(encode(), batch)
        value.backward()
        grads.append((value.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("reg_pow", [False, True])
def test_ngcf_fused_bpr_gradcheck(reg_pow: bool) -> None:
    from gnnrec.models.encoders.ngcf import _BPRNormLoss

    torch.manual_seed(1)
    rows = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: _BPRNormLoss.apply(r, 0.7, reg_pow), (rows,))
    # a zero block (all negatives zero): the norm's subgradient 0, as torch.linalg.vector_norm
    zero_neg = torch.cat([torch.randn(6, 5, dtype=torch.float64), torch.zeros(3, 5, dtype=torch.float64)])
    zero_neg.requires_grad_(True)
    _BPRNormLoss.apply(zero_neg, 0.7, reg_pow).backward()
    ref = zero_neg.detach().clone().requires_grad_(True)
    u, p, q = ref[:3], ref[3:6], ref[6:]
    pen = (u.pow(2).sum() + p.pow(2).sum() + q.pow(2).sum()) / 6 if reg_pow else (u.norm() + p.norm() + q.norm()) / 3
    (-torch.nn.functional.logsigmoid((u * p).sum(1) - (u * q).sum(1)).mean() + 0.7 * pen).backward()
    assert torch.isfinite(zero_neg.grad).all()
    torch.testing.assert_close(zero_neg.grad, ref.grad)


def test_ngcf_message_dropout_keeps_the_expectation() -> None:
    data = random_data(6, 10, 12, 40)
    model = _ngcf(data, dim=4, layers=[4], mess_dropout=0.25)
    h = torch.ones(400, 50)
    model.train()
    torch.manual_seed(1)
    out = model._dropout(h)
    kept = out != 0
    assert torch.all(out[kept] == 1 / 0.75)
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    model.eval()
    assert model._dropout(h) is h
    # p = 0.1 is drawn as 6554 / 2^16 (16-bit uniforms); the scale makes the mean exact, and
    # each of the four 16-bit lanes of an int64 draw drops at the same rate
    model = _ngcf(data, dim=4, layers=[4], mess_dropout=0.1)
    model.train()
    torch.manual_seed(2)
    out = model._dropout(torch.ones(500, 80))
    kept = out != 0
    q = 6554 / 65536
    assert torch.all(out[kept] == torch.tensor(1 / (1 - q)))
    assert abs(out.mean().item() - 1.0) < 0.01
    lanes = kept.flatten().view(-1, 4).float().mean(0)
    assert torch.all((lanes - (1 - q)).abs() < 0.012), lanes
