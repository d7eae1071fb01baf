"""Suite schema errors (exact messages with key paths), cell expansion, shipped suites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gnnrec.bench.suite import load_suite
from gnnrec.cli import main
from gnnrec.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _suite(**extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "t",
        "datasets": {"syn": {"base": {"data": {"dataset": "synthetic"}}}},
        "models": [{"model": "pop"}],
    }
    raw.update(extra)
    return raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_suite(seedz=[1]), "suite: seedz: unknown key"),
        (
            _suite(models=[{"model": "pop"}, {"model": "mf_bpr", "parms": {}}]),
            "suite: models.1.parms: unknown key",
        ),
        (
            _suite(models=[{"model": "pop", "experiment": "a.yaml"}]),
            "suite: models.0: Value error, give exactly one of 'model' (registry name) or 'experiment' (file)",
        ),
        (_suite(datasets={"syn": {"set": []}}), "suite: datasets.syn.base: Field required"),
        (
            _suite(datasets={"syn": {"base": {}, "refs": {}}}),
            "suite: datasets.syn.refs: unknown key",
        ),
        (
            _suite(metrics=["recall20"]),
            "suite: metrics: Value error, metrics are written name@K (e.g. recall@20), got 'recall20'",
        ),
        (_suite(seeds=[0, 0]), "suite: seeds: Value error, seeds must be unique, got [0, 0]"),
        (
            _suite(models=[{"model": "pop", "set": ["train.lr"]}]),
            "suite: models.0.set: Value error, expected key.path=value, got 'train.lr'",
        ),
        (
            _suite(overrides=[{"model": "mf", "set": ["train.lr=1"]}]),
            "suite: overrides.0.model: unknown model 'mf' (suite models: ['pop'])",
        ),
        (
            _suite(overrides=[{"dataset": "ml", "set": ["train.lr=1"]}]),
            "suite: overrides.0.dataset: unknown dataset 'ml' (suite datasets: ['syn'])",
        ),
        (
            _suite(models=[{"model": "pop", "set": ["train.lrr=1"]}]),
            "suite: cell syn/pop/seed-0: train.lrr: unknown key",
        ),
        (
            _suite(metrics=["recall@50"]),
            ("suite: cell syn/pop/seed-0: metrics: 'recall@50' is not evaluated (eval.metrics "
            "['recall', 'ndcg', 'hit', 'mrr', 'precision'], eval.ks [10, 20])"),
        ),
        (
            _suite(models=[{"model": "pop"}, {"model": "pop"}]),
            "suite: models: duplicate model name(s) ['pop']; give each entry a distinct 'name'",
        ),
        (
            _suite(datasets={"syn": {"base": "nope.yaml"}}),
            "suite: datasets.syn.base: file 'nope.yaml' not found (looked in the working directory)",
        ),
        (
            _suite(name="a b"),
            ("suite: name: Value error, 'a b' is not a valid name (letters, digits and _ . + = -, "
            "starting with a letter or digit)"),
        ),
        ([1, 2], "suite: a suite must be a mapping at the top level, got list"),
    ],
)
def test_schema_errors_name_the_key_path(raw: Any, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_suite(raw)
    assert str(err.value) == message


def test_reference_mapping_errors(tmp_path: Path) -> None:
    ref = tmp_path / "refs.yaml"
    ref.write_text(yaml.safe_dump({"sources": {"p": {"cite": "x"}}, "models": {"LGN": {"published": []}}}))
    with pytest.raises(ConfigError) as err:
        load_suite(_suite(references={"file": "refs.yaml", "models": {"pop": "LightGCN"}}), base_dir=tmp_path)
    assert str(err.value) == "suite: references.models.pop: 'LightGCN' is not a model of refs.yaml (has: ['LGN'])"
    with pytest.raises(ConfigError) as err:
        load_suite(_suite(references={"file": "refs.yaml", "models": {"mf": "LGN"}}), base_dir=tmp_path)
    assert str(err.value) == "suite: references.models.mf: unknown model 'mf' (suite models: ['pop'])"
    with pytest.raises(ConfigError) as err:
        load_suite(_suite(references={"file": "refs.yaml", "source": "q"}), base_dir=tmp_path)
    assert str(err.value) == "suite: references.source: unknown source 'q' (has: ['p'])"


def test_cli_reports_a_bad_suite_as_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_suite(models=[{"model": "pop", "parms": {}}])))
    assert main(["bench", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path}: models.0.parms: unknown key"]
    assert not (tmp_path / "o").exists()


def test_expansion_order_precedence_and_data_groups(tmp_path: Path) -> None:
    exp = tmp_path / "exp" / "mf_bpr-x.yaml"
    exp.parent.mkdir()
    exp.write_text(
        yaml.safe_dump(
            {
                "data": {"dataset": "ml-100k"},  # ignored: data comes from the dataset's base
                "model": {"name": "mf_bpr", "params": {"dim": 16}},
                "train": {"epochs": 7, "lr": 0.01},
            }
        )
    )
    base = {"data": {"dataset": "synthetic"}, "train": {"epochs": 3}, "compare": [{"name": "pop"}]}
    suite_path = tmp_path / "suites" / "s.yaml"
    suite_path.parent.mkdir()
    suite_path.write_text(
        yaml.safe_dump(
            {
                "name": "s",
                "seeds": [3, 5],
                "set": ["train.batch_size=11", "train.lr=0.5"],
                "datasets": {
                    "a": {"base": base, "set": ["train.batch_size=12"]},
                    "b": {"base": base, "set": ["split.ratios=[0.6,0.2,0.2]"]},
                },
                "models": [
                    {"model": "pop"},
                    {"name": "lg", "model": "lightgcn", "params": {"dim": 8}, "set": ["train.batch_size=13"]},
                    {"experiment": "exp/mf_bpr-x.yaml"},  # found in a parent folder of the suite
                ],
                "overrides": [{"dataset": "b", "model": "lg", "set": ["train.batch_size=14"]}],
            }
        )
    )
    suite = load_suite(suite_path, ["train.patience=2"])
    assert suite.models == ["pop", "lg", "mf_bpr"]
    keys = [c.key for c in suite.cells]
    assert keys == [
        (ds, m, s) for ds in ("a", "b") for s in (3, 5) for m in ("pop", "lg", "mf_bpr")
    ]
    assert [c.index for c in suite.cells] == list(range(1, 13))
    by = {c.key: c.config for c in suite.cells}
    assert by[("a", "pop", 3)].train.batch_size == 12  # dataset set beats suite set
    assert by[("a", "lg", 3)].train.batch_size == 13  # model set beats dataset set
    assert by[("b", "lg", 5)].train.batch_size == 14  # overrides entry beats model set
    assert by[("b", "pop", 5)].split.ratios == (0.6, 0.2, 0.2)
    assert by[("a", "lg", 5)].model.params == {"dim": 8}
    assert by[("a", "lg", 5)].seed == 5
    assert by[("a", "lg", 5)].compare == ()
    assert by[("a", "lg", 5)].train.patience == 2  # command-line --set
    mf = by[("a", "mf_bpr", 3)]
    assert (mf.model.params, mf.train.epochs, mf.data.dataset) == ({"dim": 16}, 7, "synthetic")
    assert mf.train.lr == 0.5  # suite set applies after the experiment's train section
    assert mf.name == "s-a-mf_bpr"
    assert suite.cells[0].run_dir(tmp_path / "o") == tmp_path / "o" / "cells" / "a" / "pop" / "seed-3"
    # One data group per (dataset, seed): models share the prepared data.
    groups: dict[str, set[tuple[str, int]]] = {}
    for c in suite.cells:
        groups.setdefault(c.data_key, set()).add((c.dataset, c.seed))
    assert sorted(v.pop() for v in groups.values() if len(v) == 1) == [("a", 3), ("a", 5), ("b", 3), ("b", 5)]
    assert len(groups) == 4


def test_cells_with_other_positives_get_their_own_data_group() -> None:
    suite = load_suite(
        _suite(models=[{"model": "pop"}, {"model": "mf_bpr", "set": ["train.positives=all"]}])
    )
    assert len({c.data_key for c in suite.cells}) == 2


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks" / "suites").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_suites_validate_and_expand(path: Path) -> None:
    suite = load_suite(path)
    assert len(suite.cells) == len(suite.datasets) * len(suite.models) * len(suite.config.seeds) > 0
    for ds in suite.references:
        # every referenced model maps to a published row of the reference file
        for ours, theirs in suite.reference_specs[ds].models.items():
            assert ours in suite.models and theirs in suite.references[ds]["models"]


def test_shipped_suites_include_the_quickstart() -> None:
    suite = load_suite(ROOT / "benchmarks" / "suites" / "quickstart.yaml")
    assert suite.datasets == ["synthetic"]
    assert {"pop", "itemknn", "mf_bpr", "neumf", "lightgcn"} <= set(suite.models)
    assert len(suite.config.seeds) == 2
    assert all(c.config.threads == 1 for c in suite.cells)


def test_bad_model_params_fail_before_any_cell_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_suite(models=[{"model": "pop"}, {"model": "mf_bpr", "params": {"dimm": 8}}])))
    assert main(["bench", str(path), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: cell syn/mf_bpr/seed-0: model.params.dimm: unknown key"]
    assert not (tmp_path / "o").exists()
    assert main(["bench", str(path), "--dry-run"]) == 2
    capsys.readouterr()
    path.write_text(yaml.safe_dump(_suite(models=[{"model": "mf_bpx"}])))
    assert main(["bench", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith("error: cell syn/mf_bpx/seed-0: model.name: unknown model 'mf_bpx' (registered: [")
