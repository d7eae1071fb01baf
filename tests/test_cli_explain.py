"""``gnnrec explain`` on tiny finished runs (a trained model and a popularity baseline), the
``beyond_accuracy`` / ``rerank`` blocks of their metrics.json, and ``gnnrec replay``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gnnrec.cli import main
from gnnrec.config import config_from_dict
from gnnrec.runner import run

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "threads": 1,
    "device": "cpu",
    "data": {
        "dataset": "synthetic",
        "synthetic": {
            "num_users": 40,
            "num_items": 50,
            "num_categories": 5,
            "events_per_user": 15,
        },
    },
    "split": {"mode": "random", "target_behavior": "buy"},
    "model": {"name": "mf_bpr", "params": {"dim": 8}},
    "train": {"epochs": 1, "positives": "all", "monitor": "ndcg@10"},
    "eval": {"ks": [5, 10]},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, overrides in (
        ("mf_bpr", ["rerank.strategy=category", "rerank.max_per_category=1"]),
        ("pop", ["model.name=pop", "model.params={}", "rerank.strategy=linucb"]),
    ):
        d = tmp_path_factory.mktemp(name)
        run(config_from_dict(TINY, overrides), d, progress=False)
        out[name] = d
    return out


def _connected_pair(run_dir: Path) -> tuple[str, str]:
    """A (user id, item id) pair joined by a 3-hop path but not a training edge."""
    from gnnrec.explain.paths import Explainer, TrainGraph
    from gnnrec.runs import load_run

    ctx = load_run(run_dir, model="none")
    ex = Explainer(TrainGraph.from_train_data(ctx.data, ctx.table.behaviors))
    for u in range(ctx.table.num_users):
        s = ex.suggest(u, top=1)
        if s.size:
            return str(ctx.table.user_ids[u]), str(ctx.table.item_ids[s[0]])
    raise AssertionError("no connected pair in the tiny run")


@pytest.mark.parametrize("name", ["mf_bpr", "pop"])
def test_explain_prints_paths(
    runs: dict[str, Path], name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    user, item = _connected_pair(runs[name])
    gml, png = tmp_path / "p.graphml", tmp_path / "p.png"
    rc = main(
        [
            "explain",
            str(runs[name]),
            "--user",
            user,
            "--item",
            item,
            "--graphml",
            str(gml),
            "--plot",
            str(png),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert " 1. [" in out
    assert f"user {user} -[" in out and out.count(f"item {item}") >= 1
    assert "score: model" in out if name == "mf_bpr" else "score: structural" in out
    import networkx as nx

    g = nx.read_graphml(gml)
    assert f"user:{user}" in g.nodes and f"item:{item}" in g.nodes
    assert png.stat().st_size > 1000


def test_explain_no_path_suggests_items(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from gnnrec.explain.paths import Explainer, TrainGraph
    from gnnrec.runs import load_run

    ctx = load_run(runs["pop"], model="none")
    ex = Explainer(TrainGraph.from_train_data(ctx.data, ctx.table.behaviors))
    pair = None
    for u in range(ctx.table.num_users):
        for i in range(ctx.table.num_items):
            if not ex.explain(u, i, top=1):
                pair = (str(ctx.table.user_ids[u]), str(ctx.table.item_ids[i]))
                break
        if pair:
            break
    if pair is None:
        pytest.skip("every pair of the tiny run is connected")
    rc = main(["explain", str(runs["pop"]), "--user", pair[0], "--item", pair[1]])
    out = capsys.readouterr().out
    assert rc == 0
    assert "no path of at most 3 hops" in out


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--user", "nobody", "--item", "0"], "unknown user id 'nobody'"),
        (["--user", "0", "--item", "nothing"], "unknown item id 'nothing'"),
    ],
)
def test_explain_unknown_ids(
    runs: dict[str, Path], args: list[str], msg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["explain", str(runs["mf_bpr"]), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error:") and msg in err[0]


def test_explain_missing_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["explain", str(tmp_path / "nope"), "--user", "0", "--item", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "run directory not found" in err[0]


def test_metrics_json_has_beyond_accuracy_and_rerank(runs: dict[str, Path]) -> None:
    m = json.loads((runs["mf_bpr"] / "metrics.json").read_text())
    ba = m["beyond_accuracy"]
    for key in (
        "coverage@10",
        "category_coverage@10",
        "ild@10",
        "novelty@10",
        "serendipity@10",
        "ild_emb@10",
    ):
        assert key in ba and np.isfinite(ba[key])
    rr = m["rerank"]
    assert rr["strategy"] == "category" and rr["knob"] == {"max_per_category": 1}
    assert set(rr["test"]) >= {"recall@10", "ndcg@5"}
    # one item per category: the re-ranked lists are at least as category-diverse
    assert rr["beyond_accuracy"]["ild@10"] >= ba["ild@10"] - 1e-12
    p = json.loads((runs["pop"] / "metrics.json").read_text())
    assert "ild_emb@10" not in p["beyond_accuracy"]
    assert "item embeddings" in p["rerank"]["error"]


def test_replay_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    cfg = dict(TINY)
    cfg["split"] = {
        "mode": "temporal",
        "ratios": [0.7, 0.1, 0.2],
        "target_behavior": "buy",
    }
    cfg["replay"] = {
        "k": 5,
        "steps": 3,
        "behaviors": ["view", "buy"],
        "strategies": {"topk": [0], "mmr": [0.5], "epsilon": [0.2], "thompson": [1.0]},
    }
    path = tmp_path / "replay.yaml"
    path.write_text(yaml.safe_dump(cfg))
    rc = main(["replay", str(path), "--out", str(tmp_path / "run"), "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and "thompson" in out
    res = json.loads((tmp_path / "run" / "replay.json").read_text())
    assert len(res["summary"]) == 4 and len(res["steps"]) == 4 * res["log"]["steps"]
    for f in (
        "replay.csv",
        "replay_reward.png",
        "replay_discovery.png",
        "replay_tradeoff.png",
    ):
        assert (tmp_path / "run" / f).is_file()
    rc = main(
        [
            "replay",
            str(path),
            "--out",
            str(tmp_path / "bad"),
            "--set",
            "replay.strategies={greedy: [1]}",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "unknown strategy 'greedy'" in err[0]
