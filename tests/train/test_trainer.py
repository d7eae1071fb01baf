"""Generic trainer: determinism, learning, early stopping, callbacks, errors; TensorBoard."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from gnnrec.config import ModelSpec, TrainConfig
from gnnrec.errors import ConfigError, GnnrecError
from gnnrec.graph.data import TrainData
from gnnrec.models import MODELS, build_model
from gnnrec.models.base import EmbDict, PairBatch, Recommender
from gnnrec.models.baselines.mf_bpr import MFBPR, MFBPRConfig
from gnnrec.train.callbacks import Callback, StopTraining, TensorBoardCallback
from gnnrec.train.trainer import FitResult, Trainer
from gnnrec.utils.device import resolve_device
from gnnrec.utils.seed import seed_everything
from tests.helpers import buy_data

CPU = torch.device("cpu")


def make_data(pairs: list[tuple[int, int]], num_users: int, num_items: int) -> TrainData:
    return buy_data(pairs, num_users, num_items)


def block_data() -> TrainData:
    """12 users x 12 items in 3 blocks: users 4b..4b+3 like items 4b..4b+3, minus one
    pair per user (so there is something to learn and negatives exist)."""
    pairs = [(u, i) for u in range(12) for i in range(12) if u // 4 == i // 4 and (u + i) % 4 != 0]
    return make_data(pairs, 12, 12)


def cfg(**kw: object) -> TrainConfig:
    base = {"epochs": 5, "batch_size": 8, "lr": 0.05, "patience": 0}
    return TrainConfig(**{**base, **kw})


def mf(data: TrainData, seed: int = 0, dim: int = 8) -> Recommender:
    torch.manual_seed(seed)
    return build_model(ModelSpec(name="mf_bpr", params={"dim": dim, "reg": 1e-4}), data.meta)


def fit(
    model: Recommender,
    data: TrainData,
    train_cfg: TrainConfig,
    validate=None,
    callbacks: Sequence[Callback] = (),
    seed: int = 0,
) -> FitResult:
    gen = torch.Generator().manual_seed(seed)
    return Trainer(train_cfg, CPU, gen, callbacks=callbacks, progress=False).fit(model, data, validate)


class Scripted:
    """validate() returning a fixed sequence of ndcg@20 values and recording the weights
    it saw at each call."""

    def __init__(self, values: Sequence[float]) -> None:
        self.values = list(values)
        self.calls = 0
        self.snapshots: list[dict[str, torch.Tensor]] = []
        self.modes: list[bool] = []

    def __call__(self, model: Recommender, emb: EmbDict) -> dict[str, float]:
        self.snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        self.modes.append(model.training)
        value = self.values[self.calls]
        self.calls += 1
        return {"ndcg@20": value, "recall@20": 2 * value}


def same_weights(model: Recommender, snap: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, snap[k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------- training
def test_same_seed_gives_identical_losses_and_weights() -> None:
    data = block_data()
    a, b = mf(data), mf(data)
    ra = fit(a, data, cfg(num_negatives=2), seed=7)
    rb = fit(b, data, cfg(num_negatives=2), seed=7)
    assert [h["loss"] for h in ra.history] == [h["loss"] for h in rb.history]
    assert same_weights(a, b.state_dict())
    # a different sampling seed changes the run (so the check above is not vacuous)
    c = mf(data)
    rc = fit(c, data, cfg(num_negatives=2), seed=8)
    assert [h["loss"] for h in rc.history] != [h["loss"] for h in ra.history]


def test_loss_decreases_and_model_learns_blocks() -> None:
    data = block_data()
    model = mf(data)
    result = fit(model, data, cfg(epochs=30, loss="bpr"))
    losses = [h["loss"] for h in result.history]
    assert result.epochs == 30 and len(losses) == 30
    assert losses[-1] < 0.5 * losses[0]
    assert result.best_epoch == 30 and result.best_valid == {} and not result.stopped_early
    # held-out in-block pairs (u + i) % 4 == 0 now outrank out-of-block items
    emb = model.encode(data)
    with torch.no_grad():
        scores = model.score_all(emb, torch.arange(12))
    held = torch.tensor(
        [scores[u, i] for u in range(12) for i in range(12) if u // 4 == i // 4 and (u + i) % 4 == 0]
    )
    other = torch.tensor([scores[u, i] for u in range(12) for i in range(12) if u // 4 != i // 4])
    assert held.mean() > other.mean()
    assert result.epoch_s > 0 and result.fit_s >= result.epoch_s


def test_bce_and_grad_clip_run() -> None:
    data = block_data()
    result = fit(mf(data), data, cfg(epochs=3, loss="bce", grad_clip=0.1, num_negatives=3))
    assert result.epochs == 3 and all(h["loss"] > 0 for h in result.history)


@pytest.mark.parametrize("sampling", ["pairs", "users"])
def test_pair_sampling_weights(sampling: str) -> None:
    # user 0 has 10 positives, user 1 one: a permutation of the pairs shows user 1 in 1/11
    # of the rows, user-first sampling (LightGCN's reference sampler) in about half
    data = make_data([(0, i) for i in range(10)] + [(1, 10)], 2, 12)
    model = mf(data)
    seen: list[torch.Tensor] = []
    base_loss = model.loss

    def spy(emb: EmbDict, batch: PairBatch, kind: str = "bpr") -> torch.Tensor:
        seen.append(batch.user.clone())
        return base_loss(emb, batch, kind)

    model.loss = spy  # type: ignore[method-assign]
    fit(model, data, cfg(epochs=20, batch_size=11, pair_sampling=sampling))
    assert len(seen) == 20 and all(b.numel() == 11 for b in seen)  # epochs keep P = 11 rows
    share = float(torch.cat(seen).eq(1).double().mean())
    if sampling == "pairs":
        assert all(int(b.eq(1).sum()) == 1 for b in seen)
    else:
        assert 0.35 < share < 0.65, share


def test_pair_sampling_users_refused_by_models_with_own_batches() -> None:
    from tests.models.test_sequential import session_data

    data = session_data(2)[2]
    model = build_model(ModelSpec(name="gru4rec", params={"dim": 4}), data.meta)
    with pytest.raises(ConfigError, match="pair_sampling"):
        fit(model, data, cfg(epochs=1, pair_sampling="users"))


def view_buy_data() -> TrainData:
    """3 users x 20 items: user 0 bought 0, 1 and viewed 0..4; user 1 bought 5 and viewed
    5, 6; user 2 bought 7 and viewed nothing else."""
    from gnnrec.graph.data import GraphMeta

    buys = torch.tensor([[0, 0, 1, 2], [0, 1, 5, 7]])
    views = torch.tensor([[0, 0, 0, 0, 0, 1, 1], [0, 1, 2, 3, 4, 5, 6]])
    z = {b: torch.zeros(e.shape[1], dtype=torch.long) for b, e in (("view", views), ("buy", buys))}
    return TrainData(
        meta=GraphMeta(3, 20, 1, ("view", "buy"), "buy"),
        edge_index={"view": views, "buy": buys},
        edge_ts=z,
        edge_count={b: v + 1 for b, v in z.items()},
        pos_index=buys,
        item_category=torch.zeros(20, dtype=torch.long),
    )


def test_behavior_negatives_reach_the_loss() -> None:
    data = view_buy_data()
    model = mf(data)
    seen: list[PairBatch] = []
    base_loss = model.loss

    def spy(emb: EmbDict, batch: PairBatch, kind: str = "bpr") -> torch.Tensor:
        seen.append(batch)
        return base_loss(emb, batch, kind)

    model.loss = spy  # type: ignore[method-assign]
    fit(model, data, cfg(epochs=30, batch_size=4, num_negatives=3, behavior_negatives=("view",), behavior_negative_share=1.0))
    user = torch.cat([b.user for b in seen])
    neg = torch.cat([b.neg for b in seen])
    assert set(neg[user == 0].flatten().tolist()) == {2, 3, 4}  # viewed, not bought
    assert set(neg[user == 1].flatten().tolist()) == {6}
    assert len(set(neg[user == 2].flatten().tolist())) > 5  # no behaviour negative: uniform
    assert not (neg[user == 2] == 7).any()


def test_behavior_negatives_config_errors() -> None:
    data = view_buy_data()
    with pytest.raises(ConfigError, match="behaviour 'cart' is not an edge type of the training graph"):
        fit(mf(data), data, cfg(epochs=1, behavior_negatives=("cart",)))
    lgcn = build_model(ModelSpec(name="lightgcn", params={"dim": 4}), data.meta)
    with pytest.raises(ConfigError, match="train.behavior_negatives needs per-pair negatives"):
        fit(lgcn, data, cfg(epochs=1, behavior_negatives=("view",), neg_sampling="shared"))


def test_step_lr_decay_schedule() -> None:
    data = block_data()
    result = fit(mf(data), data, cfg(epochs=7, lr=0.01, lr_decay_every=3, lr_decay=0.5))
    lrs = [h["lr"] for h in result.history]
    assert lrs == pytest.approx([0.01] * 3 + [0.005] * 3 + [0.0025])
    # one-off decays at given epochs
    at = fit(mf(data), data, cfg(epochs=7, lr=0.01, lr_decay_at=(2, 5), lr_decay=0.5))
    assert [h["lr"] for h in at.history] == pytest.approx([0.01] * 2 + [0.005] * 3 + [0.0025] * 2)
    # without a schedule the learning rate stays put
    flat = fit(mf(data), data, cfg(epochs=4, lr=0.01))
    assert [h["lr"] for h in flat.history] == [0.01] * 4


def test_lr_decay_is_validated() -> None:
    with pytest.raises(ValueError, match="lr_decay_every"):
        TrainConfig(lr_decay_every=0)
    with pytest.raises(ValueError, match="lr_decay"):
        TrainConfig(lr_decay_every=2, lr_decay=1.5)
    with pytest.raises(ValueError, match="increasing"):
        TrainConfig(lr_decay_at=(5, 3))
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(lr_decay_at=(5,), lr_decay_every=2)


# ---------------------------------------------------------------- early stopping
def test_early_stopping_stops_and_restores_best() -> None:
    data = block_data()
    model = mf(data)
    val = Scripted([0.1, 0.3, 0.2, 0.25, 0.9, 0.9])
    result = fit(model, data, cfg(epochs=6, patience=2), validate=val)
    # best at epoch 2; epochs 3 and 4 do not improve → stop after epoch 4
    assert result.epochs == 4 and val.calls == 4
    assert result.best_epoch == 2
    assert result.best_valid == {"ndcg@20": 0.3, "recall@20": 0.6}
    assert result.stopped_early and result.stop_reason == "patience"
    assert same_weights(model, val.snapshots[1])
    assert not same_weights(model, val.snapshots[3])
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert result.history[2]["ndcg@20"] == 0.2 and "loss" in result.history[2]
    assert val.modes == [False] * 4  # validate sees the model in eval mode


def test_ties_do_not_count_as_improvement() -> None:
    data = block_data()
    val = Scripted([0.5, 0.5, 0.5, 0.7])
    result = fit(mf(data), data, cfg(epochs=4, patience=2), validate=val)
    assert result.best_epoch == 1 and result.epochs == 3


def test_patience_zero_never_stops_but_restores_best() -> None:
    data = block_data()
    model = mf(data)
    val = Scripted([0.1, 0.4, 0.3, 0.2, 0.1])
    result = fit(model, data, cfg(epochs=5, patience=0), validate=val)
    assert result.epochs == 5 and not result.stopped_early and result.stop_reason is None
    assert result.best_epoch == 2 and same_weights(model, val.snapshots[1])


def test_eval_every_counts_patience_in_epochs() -> None:
    data = block_data()
    val = Scripted([0.5, 0.4, 0.3, 0.2])
    # validated at epochs 2, 4, 6, 7 (the last epoch is always validated)
    result = fit(mf(data), data, cfg(epochs=7, eval_every=2, patience=3), validate=val)
    # best at 2; epoch 4 is 2 epochs later (< 3); epoch 6 is 4 later → stop at 6
    assert result.epochs == 6 and result.best_epoch == 2 and val.calls == 3
    assert [("ndcg@20" in h) for h in result.history] == [False, True, False, True, False, True]
    full = Scripted([0.5, 0.6, 0.7, 0.8])
    r2 = fit(mf(data), data, cfg(epochs=7, eval_every=2, patience=3), validate=full)
    assert full.calls == 4 and r2.best_epoch == 7


def test_missing_monitor_is_an_error() -> None:
    data = block_data()
    with pytest.raises(GnnrecError, match="train.monitor 'ndcg@20'.*recall@10"):
        fit(mf(data), data, cfg(epochs=2), validate=lambda m, e: {"recall@10": 0.1})


# ---------------------------------------------------------------- callbacks
class Recorder(Callback):
    def __init__(self, stop_at: int | None = None) -> None:
        self.epochs: list[int] = []
        self.logs: list[dict[str, float]] = []
        self.result: FitResult | None = None
        self.stop_at = stop_at

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.epochs.append(epoch)
        self.logs.append(logs)
        if epoch == self.stop_at:
            raise StopTraining("pruned")

    def on_fit_end(self, result: FitResult) -> None:
        self.result = result


def test_stop_training_from_callback() -> None:
    data = block_data()
    model = mf(data)
    stopper, after = Recorder(stop_at=3), Recorder()
    val = Scripted([0.3, 0.2, 0.1, 0.9, 0.9])
    result = fit(model, data, cfg(epochs=5), validate=val, callbacks=[stopper, after])
    assert result.epochs == 3 and result.stopped_early and result.stop_reason == "callback: pruned"
    assert stopper.epochs == [1, 2, 3]
    assert after.epochs == [1, 2, 3]  # later callbacks still see the stopping epoch
    assert after.result is result
    assert result.best_epoch == 1 and same_weights(model, val.snapshots[0])
    assert set(after.logs[0]) == {"loss", "lr", "train_s", "train_cpu_s", "ndcg@20", "recall@20"}


# ---------------------------------------------------------------- errors and special paths
class NaNMF(MFBPR):
    def loss(self, emb: EmbDict, batch: PairBatch, kind: str = "bpr") -> torch.Tensor:
        return super().loss(emb, batch, kind) * float("nan")


def test_nan_loss_raises_with_epoch_and_lr_hint() -> None:
    data = block_data()
    model = NaNMF(data.meta, MFBPRConfig(dim=4))
    with pytest.raises(GnnrecError, match=r"epoch 1 .*lower train.lr"):
        fit(model, data, cfg(epochs=3))


def test_non_trainable_model_is_validated_once() -> None:
    data = block_data()
    model = build_model(ModelSpec(name="pop"), data.meta)
    rec = Recorder()
    seen: list[torch.Tensor] = []

    def validate(m: Recommender, emb: EmbDict) -> dict[str, float]:
        seen.append(emb["pop"].clone())
        return {"ndcg@20": 0.25}

    result = fit(model, data, cfg(epochs=50), validate=validate, callbacks=[rec])
    assert result.epochs == 0 and result.best_epoch == 0 and len(seen) == 1
    assert result.history == [{"epoch": 0, "ndcg@20": 0.25}]
    assert result.best_valid == {"ndcg@20": 0.25} and not result.stopped_early
    assert rec.epochs == [0] and rec.result is result
    # prepare() ran on the training data: item i of block b has 3 positives
    assert seen[0].tolist() == [3.0] * 12
    # and without validate
    assert fit(build_model(ModelSpec(name="itemknn"), data.meta), data, cfg()).history == [{"epoch": 0}]


def test_zero_epochs_validates_untrained_model() -> None:
    data = block_data()
    model = mf(data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = fit(model, data, cfg(epochs=0), validate=Scripted([0.1]))
    assert result.epochs == 0 and result.best_valid["ndcg@20"] == 0.1
    assert same_weights(model, before)


@pytest.mark.parametrize("name", ["pop", "itemknn", "mf_bpr", "neumf", "mlp"])
def test_every_baseline_fits_one_epoch(name: str) -> None:
    data = block_data()
    torch.manual_seed(0)
    model = build_model(ModelSpec(name=name), data.meta)
    val = Scripted([0.5])
    result = fit(model, data, cfg(epochs=1, loss="bce"), validate=val)
    assert val.calls == 1 and result.best_valid["ndcg@20"] == 0.5
    assert result.epochs == (1 if model.trainable else 0)
    assert name in MODELS


def test_seed_everything_returns_seeded_generator() -> None:
    import random

    import numpy as np

    g1 = seed_everything(123)
    a = torch.rand(3), torch.rand(3, generator=g1), random.random(), np.random.rand()
    g2 = seed_everything(123)
    b = torch.rand(3), torch.rand(3, generator=g2), random.random(), np.random.rand()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2:] == b[2:]
    g3 = seed_everything(124)
    assert not torch.equal(torch.rand(3, generator=g3), a[1])


def test_seed_everything_deterministic_without_nan_filling_new_tensors() -> None:
    seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    # torch's debugging fill of uninitialised memory (a quarter of a LightGCN step) is off
    assert torch.utils.deterministic.fill_uninitialized_memory is False


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(GnnrecError, match="device 'cuda' requested but CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")


# ---------------------------------------------------------------- TensorBoard
def test_tensorboard_callback_writes_readable_events(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = block_data()
    log_dir = tmp_path / "tb"
    tb = TensorBoardCallback(log_dir)
    val = Scripted([0.1, 0.3, 0.2])
    result = fit(mf(data), data, cfg(epochs=3), validate=val, callbacks=[tb])
    best = {f"hparam/best_{k}": v for k, v in result.best_valid.items()}
    tb.write_hparams({"lr": 0.05, "model": "mf_bpr", "layers": [1, 2]}, {**best, "hparam/nan": float("nan")})
    tb.close()
    tb.close()  # idempotent

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "valid/ndcg@20", "valid/recall@20"} <= set(tags)
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert [e.value for e in loss] == pytest.approx([h["loss"] for h in result.history])
    assert [e.value for e in acc.Scalars("valid/ndcg@20")] == pytest.approx([0.1, 0.3, 0.2])
    assert acc.Scalars("hparam/best_ndcg@20")[0].value == pytest.approx(0.3)
    assert "hparam/nan" not in tags
    # the hparams plugin's experiment and session summaries are present
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(acc.PluginTagToContent("hparams"))
