"""Checkpoint/resume, time budget, monitors, the sampled-softmax loss and shared negatives."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gnnrec import losses
from gnnrec.config import ModelSpec, TrainConfig
from gnnrec.data.sampling import UniformNegativeSampler
from gnnrec.errors import ConfigError, GnnrecError
from gnnrec.graph.data import TrainData
from gnnrec.models import PairBatch, build_model
from gnnrec.models.base import EmbDict, Recommender
from gnnrec.train.callbacks import Callback
from gnnrec.train.trainer import CHECKPOINT_NAME, Trainer
from tests.helpers import buy_data

CPU = torch.device("cpu")


def block_data() -> TrainData:
    """12 users x 12 items in 3 blocks (users 4b..4b+3 like items 4b..4b+3, minus one pair
    per user)."""
    pairs = [(u, i) for u in range(12) for i in range(12) if u // 4 == i // 4 and (u + i) % 4 != 0]
    return buy_data(pairs, 12, 12)


def lightgcn(data: TrainData, seed: int = 0) -> Recommender:
    torch.manual_seed(seed)
    return build_model(ModelSpec(name="lightgcn", params={"dim": 8, "num_layers": 2}), data.meta)


def tcfg(**kw: object) -> TrainConfig:
    base = {
        "epochs": 6,
        "batch_size": 16,
        "lr": 0.05,
        "patience": 0,
        "loss": "softmax",
        "temperature": 0.5,
        "neg_sampling": "shared",
        "num_negatives": 5,
        "lr_decay_every": 2,
        "lr_decay": 0.5,
    }
    return TrainConfig(**{**base, **kw})


def fit(model, data, cfg, ckpt_dir=None, callbacks=(), validate=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    trainer = Trainer(cfg, CPU, gen, callbacks=callbacks, progress=False, checkpoint_dir=ckpt_dir)
    return trainer.fit(model, data, validate)


class Crash(Callback):
    """Simulates a killed process: raises a non-StopTraining exception after an epoch."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if epoch == self.at:
            raise KeyboardInterrupt


def same_state(a: Recommender, b: Recommender) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------- softmax loss
def test_softmax_loss_exact_values() -> None:
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.0, 2.0], [1.0, float("-inf")]])
    # row 0: logits [1, 0, 2] / 0.5 = [2, 0, 4]; row 1: [0, 2, -inf] (masked negative)
    want = ((math.log(math.e**2 + 1 + math.e**4) - 2) + math.log(1 + math.e**2)) / 2
    assert losses.softmax(pos, neg, temperature=0.5).item() == pytest.approx(want, rel=1e-6)
    # temperature 1: row 0 logits [1, 0, 2]
    want1 = ((math.log(math.e + 1 + math.e**2) - 1) + math.log(1 + math.e)) / 2
    assert losses.softmax(pos, neg, temperature=1.0).item() == pytest.approx(want1, rel=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        losses.softmax(pos, neg, temperature=0.0)


def test_losses_broadcast_a_shared_pool() -> None:
    pos = torch.tensor([0.5, -1.0, 2.0])
    pool = torch.tensor([[0.1, -0.3, 0.7, 1.5]])
    for name in ("bpr", "bce", "softmax"):
        fn = losses.get(name)
        assert torch.allclose(fn(pos, pool), fn(pos, pool.expand(3, -1)))
    assert losses.get("softmax") is losses.softmax and "softmax" in losses.TEMPERATURE_LOSSES
    with pytest.raises(ConfigError, match="unknown loss 'nope'"):
        losses.get("nope")


def test_lightgcn_shared_pool_equals_repeated_pool() -> None:
    data = block_data()
    model = lightgcn(data)
    emb = model.encode(data)
    user, pos = torch.tensor([0, 5, 9]), torch.tensor([1, 6, 11])
    pool = torch.tensor([[2, 6, 7, 0]])
    shared = PairBatch(user, pos, pool)
    repeated = PairBatch(user, pos, pool.expand(3, -1))
    # bpr: same value (the ego L2 counts the pool once vs per row, so compare with reg off)
    model.config = model.config.model_copy(update={"reg": 0.0})
    assert torch.allclose(model.loss(emb, shared, "bpr"), model.loss(emb, repeated, "bpr"))
    # softmax: row 1's positive (item 6) is in the pool and is masked out of its negatives
    got = model.loss(emb, shared, "softmax", temperature=0.2)
    s_pos = (emb["user"][user] * emb["item"][pos]).sum(-1)
    s_neg = emb["user"][user] @ emb["item"][pool[0]].T
    s_neg[1, 1] = float("-inf")
    assert torch.allclose(got, losses.softmax(s_pos, s_neg, 0.2))


def test_sample_shared_draws_from_candidates() -> None:
    g = torch.Generator().manual_seed(0)
    s = UniformNegativeSampler(10, torch.tensor([[0], [1]]), g, candidates=torch.tensor([3, 7]))
    pool = s.sample_shared(50)
    assert pool.shape == (1, 50) and set(pool.flatten().tolist()) == {3, 7}


def test_unsupported_loss_options_are_config_errors() -> None:
    data = block_data()
    torch.manual_seed(0)
    mf = build_model(ModelSpec(name="mf_bpr", params={"dim": 4}), data.meta)
    with pytest.raises(ConfigError, match="neg_sampling: 'shared' is not supported by MFBPR"):
        fit(mf, data, tcfg())
    ngcf = build_model(ModelSpec(name="ngcf", params={"dim": 4}), data.meta)
    with pytest.raises(ConfigError, match="'softmax' .* is not supported by NGCF"):
        fit(ngcf, data, tcfg(neg_sampling="per_pair"))


def test_generic_loss_takes_the_softmax_temperature() -> None:
    data = block_data()
    torch.manual_seed(0)
    mf = build_model(ModelSpec(name="mf_bpr", params={"dim": 4, "reg": 0.0}), data.meta)
    emb = mf.encode(data)
    batch = PairBatch(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([[5, 6], [7, 8]]))
    pos = mf.score(emb, batch.user, batch.pos)
    neg = mf.score(emb, batch.user.repeat_interleave(2), batch.neg.reshape(-1)).view(2, 2)
    for t in (0.1, 0.5):
        expected = losses.softmax(pos, neg, temperature=t)
        assert torch.allclose(mf.loss(emb, batch, "softmax", temperature=t), expected)
    assert not torch.allclose(mf.loss(emb, batch, "softmax", temperature=0.1), mf.loss(emb, batch, "softmax", temperature=0.5))
    # the trainer passes train.temperature to it
    fit(mf, data, tcfg(neg_sampling="per_pair", temperature=0.5, epochs=1))


def test_softmax_training_learns_blocks() -> None:
    data = block_data()
    model = lightgcn(data)
    result = fit(model, data, tcfg(epochs=30, lr_decay_every=None))
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    emb = model.encode(data)
    scores = model.score_all(emb, torch.arange(12))
    # each user's best unseen item is in its own block
    assert all(int(scores[u].argmax()) // 4 == u // 4 for u in range(12))


# ---------------------------------------------------------------- checkpoint / resume
def test_interrupted_then_resumed_equals_straight_run(tmp_path: Path) -> None:
    data = block_data()
    straight = lightgcn(data)
    ref = fit(straight, data, tcfg())

    model = lightgcn(data)
    cfg = tcfg(checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):  # killed after epoch 3: checkpoint of epoch 2 on disk
        fit(model, data, cfg, tmp_path, callbacks=[Crash(3)])
    assert (tmp_path / CHECKPOINT_NAME).exists()
    assert not (tmp_path / (CHECKPOINT_NAME + ".tmp")).exists()  # written atomically
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=False)["epoch"] == 2

    # a fresh process: another init, another generator seed -- all restored from the file
    resumed_model = lightgcn(data, seed=123)
    res = fit(resumed_model, data, tcfg(checkpoint_every=2, resume=True), tmp_path, seed=99)
    assert res.resumed_from == 2 and res.epochs == 6
    assert same_state(resumed_model, straight)  # bit-identical embeddings
    assert [h["loss"] for h in res.history] == [h["loss"] for h in ref.history]
    assert [h["lr"] for h in res.history] == [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]


def test_resume_keeps_the_best_validated_state(tmp_path: Path) -> None:
    data = block_data()
    values = iter([0.1, 0.5, 0.2, 0.3, 0.6, 0.4])

    def validate(model: Recommender, emb: EmbDict) -> dict[str, float]:
        return {"ndcg@20": next(values)}

    straight = lightgcn(data)
    ref = fit(straight, data, tcfg(), validate=validate)
    values = iter([0.1, 0.5, 0.2, 0.3, 0.6, 0.4])
    model = lightgcn(data)
    with pytest.raises(KeyboardInterrupt):
        fit(model, data, tcfg(checkpoint_every=1), tmp_path, callbacks=[Crash(3)], validate=validate)
    values = iter([0.2, 0.3, 0.6, 0.4])  # epochs 3..6 (epoch 3 is re-run: its checkpoint was not written)
    again = lightgcn(data, seed=5)
    res = fit(again, data, tcfg(checkpoint_every=1, resume=True), tmp_path, validate=validate)
    assert res.resumed_from == 2 and ref.best_epoch == res.best_epoch == 5
    assert res.best_valid == {"ndcg@20": 0.6}
    assert same_state(again, straight)


def test_finished_run_resumes_as_finished_and_more_epochs_continue(tmp_path: Path) -> None:
    data = block_data()
    first = lightgcn(data)
    fit(first, data, tcfg(epochs=3, checkpoint_every=5), tmp_path)  # final checkpoint at epoch 3
    assert torch.load(tmp_path / CHECKPOINT_NAME, weights_only=False)["epoch"] == 3
    more = lightgcn(data, seed=1)
    res = fit(more, data, tcfg(epochs=6, checkpoint_every=5, resume=True), tmp_path)
    straight = lightgcn(data)
    fit(straight, data, tcfg(epochs=6))
    assert res.resumed_from == 3 and res.epochs == 6 and same_state(more, straight)
    # the run is complete: resuming again trains nothing and returns the same weights
    again = lightgcn(data, seed=2)
    res2 = fit(again, data, tcfg(epochs=6, checkpoint_every=5, resume=True), tmp_path)
    assert res2.resumed_from == 6 and res2.epochs == 6 and same_state(again, straight)


def test_resume_without_checkpoint_starts_fresh(tmp_path: Path) -> None:
    data = block_data()
    a, b = lightgcn(data), lightgcn(data)
    fit(a, data, tcfg(epochs=2))
    res = fit(b, data, tcfg(epochs=2, resume=True), tmp_path)
    assert res.resumed_from == 0 and same_state(a, b)


def test_resume_checks_the_configuration(tmp_path: Path) -> None:
    data = block_data()
    fit(lightgcn(data), data, tcfg(epochs=2, checkpoint_every=1), tmp_path)
    with pytest.raises(GnnrecError, match=r"checkpoint does not belong .*lr \(checkpoint 0.05, now 0.01\)"):
        fit(lightgcn(data), data, tcfg(epochs=2, lr=0.01, resume=True), tmp_path)
    torch.manual_seed(0)
    other = build_model(ModelSpec(name="lightgcn", params={"dim": 4, "num_layers": 2}), data.meta)
    with pytest.raises(GnnrecError, match="model differs"):
        fit(other, data, tcfg(epochs=2, resume=True), tmp_path)
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(GnnrecError, match="cannot read the checkpoint"):
        fit(lightgcn(data), data, tcfg(epochs=2, resume=True), tmp_path)


def test_checkpoint_without_a_directory_is_a_config_error() -> None:
    data = block_data()
    with pytest.raises(ConfigError, match="need a checkpoint directory"):
        fit(lightgcn(data), data, tcfg(checkpoint_every=1))


# ---------------------------------------------------------------- time budget, monitors
def test_time_budget_stops_after_the_first_epoch() -> None:
    data = block_data()
    res = fit(lightgcn(data), data, tcfg(time_budget_min=1e-9))
    assert res.epochs == 1 and res.stop_reason == "time budget" and res.stopped_early
    assert res.train_s > 0 and res.history[0]["train_s"] == res.train_s


class Monitor:
    def __init__(self) -> None:
        self.seen: list[tuple[int, bool, bool]] = []

    def on_epoch_model(self, epoch: int, model: Recommender, data: TrainData, logs: dict[str, float]) -> None:
        self.seen.append((epoch, model.training, torch.is_grad_enabled()))
        logs["probe"] = float(epoch * 10)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_fit_end(self, result: object) -> None:
        pass


def test_monitor_sees_eval_mode_without_grad_and_logs_into_history() -> None:
    data = block_data()
    mon = Monitor()
    res = fit(lightgcn(data), data, tcfg(epochs=3), callbacks=[mon])
    assert mon.seen == [(1, False, False), (2, False, False), (3, False, False)]
    assert [h["probe"] for h in res.history] == [10.0, 20.0, 30.0]


def test_in_batch_pool_is_the_batch_positives() -> None:
    pos_index = torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    sampler = UniformNegativeSampler(10, pos_index, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    batches = list(Trainer._pair_batches(pos_index, sampler, gen, 4, 3, "in_batch"))
    assert [b.user.shape[0] for b in batches] == [4, 1]
    for b in batches:
        assert b.neg.shape == (1, min(3, b.user.shape[0]))
        assert torch.equal(b.neg[0], b.pos[:3])
    data = block_data()
    res = fit(lightgcn(data), data, tcfg(neg_sampling="in_batch", epochs=2))
    assert res.epochs == 2 and math.isfinite(res.history[-1]["loss"])


def test_cpu_clock_budget_and_both_clocks_logged() -> None:
    data = block_data()
    res = fit(lightgcn(data), data, tcfg(time_budget_min=1e-9, time_budget_clock="cpu"))
    assert res.epochs == 1 and res.stop_reason == "time budget"
    assert res.train_cpu_s > 0 and res.history[0]["train_cpu_s"] == res.train_cpu_s
    # a budget no epoch reaches: all epochs run
    res = fit(lightgcn(data), data, tcfg(epochs=2, time_budget_min=60, time_budget_clock="cpu"))
    assert res.epochs == 2 and res.stop_reason is None


# ---------------------------------------------------------------- through the CLI
def test_gnnrec_run_resume_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gnnrec run --out DIR` with checkpoints, a crash, then `--set train.resume=true` gives
    the uninterrupted run's model (the runner passes the run directory to the trainer)."""
    from gnnrec.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "threads: 1\n"
        "data:\n  dataset: synthetic\n  synthetic: {num_users: 30, num_items: 40, num_categories: 4}\n"
        "model:\n  name: lightgcn\n  params: {dim: 8, num_layers: 2}\n"
        "train: {epochs: 4, batch_size: 64, lr: 0.01, patience: 0, loss: softmax, temperature: 0.5,\n"
        "        neg_sampling: shared, num_negatives: 8, checkpoint_every: 2}\n"
        "eval: {beyond_accuracy: false}\n"
    )
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["run", str(cfg), "--out", str(straight), "-q"]) == 0
    assert (straight / CHECKPOINT_NAME).exists()
    # the interrupted run: only 2 epochs happened (checkpoint of epoch 2 on disk)
    assert main(["run", str(cfg), "--out", str(resumed), "-q", "--set", "train.epochs=2"]) == 0
    assert main(["run", str(cfg), "--out", str(resumed), "-q", "--set", "train.resume=true"]) == 0
    a = torch.load(straight / "model.pt", weights_only=True)
    b = torch.load(resumed / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # another configuration in the same directory is refused with one error line
    code = main(["run", str(cfg), "--out", str(resumed), "-q", "--set", "train.resume=true", "--set", "train.lr=0.1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert "lr (checkpoint 0.01, now 0.1)" in err[0]


def test_time_budget_stop_resumes_with_a_larger_budget(tmp_path: Path) -> None:
    data = block_data()
    first = lightgcn(data)
    res = fit(first, data, tcfg(epochs=3, time_budget_min=1e-9, checkpoint_every=10), tmp_path)
    assert res.epochs == 1 and res.stop_reason == "time budget"
    # the same budget: finished, nothing more is trained
    same = lightgcn(data, seed=3)
    res = fit(same, data, tcfg(epochs=3, time_budget_min=1e-9, checkpoint_every=10, resume=True), tmp_path)
    assert res.epochs == 1 and same_state(same, first)
    # a larger budget continues to the uninterrupted run's weights
    more = lightgcn(data, seed=4)
    res = fit(more, data, tcfg(epochs=3, time_budget_min=60, checkpoint_every=10, resume=True), tmp_path)
    straight = lightgcn(data)
    fit(straight, data, tcfg(epochs=3))
    assert res.resumed_from == 1 and res.epochs == 3 and res.stop_reason is None
    assert same_state(more, straight)
