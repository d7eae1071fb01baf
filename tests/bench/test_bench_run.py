"""`gnnrec bench` end to end on a tiny suite: tables equal the cells' metrics, plots exist,
resume re-runs only unfinished cells; references and their ratios; per-cell peak memory."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
import yaml

from gnnrec.bench.aggregate import aggregate, find_reference
from gnnrec.bench.suite import load_suite
from gnnrec.cli import main

TINY_DATA = [
    "data.synthetic.num_users=60",
    "data.synthetic.num_items=80",
    "data.synthetic.num_categories=4",
    "data.synthetic.events_per_user=15",
]


def _write_suite(tmp_path: Path) -> Path:
    raw = {
        "name": "tiny",
        "metrics": ["recall@20", "ndcg@10"],
        "seeds": [0, 1],
        "set": ["threads=1", "device=cpu"],
        "datasets": {
            "syn": {
                "base": {
                    "data": {"dataset": "synthetic"},
                    "split": {"mode": "random", "target_behavior": "buy"},
                    "train": {"epochs": 2, "batch_size": 256, "lr": 0.01, "positives": "all"},
                    "eval": {"ks": [10, 20]},
                },
                "set": TINY_DATA,
            }
        },
        "models": [{"model": "pop"}, {"name": "mf", "model": "mf_bpr", "params": {"dim": 8}}],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _cell_metrics(out: Path, model: str, seed: int) -> dict[str, Any]:
    return json.loads((out / "cells" / "syn" / model / f"seed-{seed}" / "metrics.json").read_text())


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench")
    suite = _write_suite(tmp)
    out = tmp / "out"
    rc = main(["bench", str(suite), "--out", str(out), "-q"])
    return {"rc": rc, "suite": suite, "out": out, "tmp": tmp}


def test_bench_writes_tables_that_equal_the_cells(bench_run: dict[str, Any]) -> None:
    assert bench_run["rc"] == 0
    out: Path = bench_run["out"]
    rows = {r["model"]: r for r in _csv(out / "table.csv")}
    assert list(rows) == ["pop", "mf"]
    for model in ("pop", "mf"):
        cells = [_cell_metrics(out, model, s) for s in (0, 1)]
        for k in ("recall@20", "ndcg@10"):
            values = [c["test"][k] for c in cells]
            assert float(rows[model][f"{k}_mean"]) == pytest.approx(statistics.fmean(values), rel=1e-12)
            assert float(rows[model][f"{k}_std"]) == pytest.approx(statistics.stdev(values), rel=1e-12)
        assert float(rows[model]["fit_s_mean"]) == pytest.approx(statistics.fmean(c["timing"]["fit_s"] for c in cells))
        assert float(rows[model]["peak_rss_mb_max"]) == max(c["bench"]["peak_rss_mb"] for c in cells)
        assert rows[model]["seeds"] == "2"
    assert float(rows["mf"]["epochs_mean"]) == 2.0
    # The Markdown table shows the same numbers, 4 decimals, mean ± std.
    md = (out / "table.md").read_text()
    mf = [_cell_metrics(out, "mf", s)["test"]["recall@20"] for s in (0, 1)]
    expected = f"{statistics.fmean(mf):.4f} ± {statistics.stdev(mf):.4f}"
    line = next(line for line in md.splitlines() if line.startswith("| mf |"))
    assert line.split(" | ")[2] == expected
    assert "| model | seeds | recall@20 | ndcg@10 | fit s | s/epoch | epochs | peak MB |" in md
    assert "- command: `gnnrec bench" in md and "- commit: `" in md and "load average" in md
    # cells.csv: every cell raw; LaTeX table; plots.
    cells = _csv(out / "cells.csv")
    assert [(c["model"], c["seed"], c["status"]) for c in cells] == [
        ("pop", "0", "finished"), ("mf", "0", "finished"), ("pop", "1", "finished"), ("mf", "1", "finished")
    ]
    assert float(cells[1]["recall@20"]) == _cell_metrics(out, "mf", 0)["test"]["recall@20"]
    assert "\\begin{tabular}" in (out / "table.tex").read_text()
    for name in ("metrics_syn.png", "curves_syn.png", "time_vs_recall_20_syn.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The normal run contract is in every cell.
    cell = out / "cells" / "syn" / "mf" / "seed-1"
    for name in ("config.yaml", "metrics.json", "history.csv", "tb", "env.json", "run.log"):
        assert (cell / name).exists()


def test_existing_out_needs_resume(bench_run: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out = bench_run["out"]
    assert main(["bench", str(bench_run["suite"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        (f"error: --out {out}: directory exists and is not empty; pass --resume to continue it "
        "(finished cells are skipped) or choose another --out")
    ]


def test_resume_reruns_only_the_unfinished_cell(bench_run: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out: Path = bench_run["out"]
    before_rows = {r["model"]: r for r in _csv(out / "table.csv")}
    files = {(m, s): out / "cells" / "syn" / m / f"seed-{s}" / "metrics.json" for m in ("pop", "mf") for s in (0, 1)}
    mtimes = {k: p.stat().st_mtime_ns for k, p in files.items()}
    old = json.loads(files[("mf", 1)].read_text())
    files[("mf", 1)].unlink()
    capsys.readouterr()
    assert main(["bench", str(bench_run["suite"]), "--out", str(out), "--resume", "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished before, skipped") == 3
    assert "[4/4] syn / mf / seed 1: recall@20" in printed
    for key, path in files.items():
        if key == ("mf", 1):
            assert path.exists()
        else:
            assert path.stat().st_mtime_ns == mtimes[key], key
    new = json.loads(files[("mf", 1)].read_text())
    assert new["test"] == old["test"]  # deterministic on CPU
    after_rows = {r["model"]: r for r in _csv(out / "table.csv")}
    assert after_rows["pop"] == before_rows["pop"]
    for k in ("recall@20_mean", "recall@20_std", "ndcg@10_mean", "ndcg@10_std", "seeds"):
        assert after_rows["mf"][k] == before_rows["mf"][k]
    # An interrupted cell (metrics.json without the bench section) is not finished either.
    m = json.loads(files[("pop", 0)].read_text())
    del m["bench"]
    files[("pop", 0)].write_text(json.dumps(m))
    capsys.readouterr()
    assert main(["bench", str(bench_run["suite"]), "--out", str(out), "--resume", "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("finished before, skipped") == 3
    assert "[1/4] syn / pop / seed 0: recall@20" in printed


def test_changed_config_makes_a_cell_stale(bench_run: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    out: Path = bench_run["out"]
    suite = load_suite(bench_run["suite"])
    changed = load_suite(bench_run["suite"], ["train.lr=0.02"])
    from gnnrec.bench.execute import read_cell

    assert all(read_cell(c, out, suite.metrics) is not None for c in suite.cells)
    assert all(read_cell(c, out, suite.metrics) is None for c in changed.cells)


def _refs_suite(tmp_path: Path) -> Any:
    (tmp_path / "refs.yaml").write_text(
        yaml.safe_dump(
            {
                "dataset": "syn",
                "sources": {"paperA": {"cite": "A et al., 2020"}, "paperB": {"cite": "B et al., 2021"}},
                "models": {
                    "MF": {
                        "compare_to": "MF-BPR",
                        "published": [
                            {"source": "paperA", "metrics": {"recall@20": 0.5}},
                            {"source": "paperB", "metrics": {"recall@20": 0.25, "ndcg@10": 0.2}},
                        ],
                    }
                },
            }
        )
    )
    raw = yaml.safe_load(_write_suite(tmp_path).read_text())
    raw["references"] = {"file": "refs.yaml", "models": {"mf": "MF"}}
    return load_suite(raw, base_dir=tmp_path)


def _records() -> list[dict[str, Any]]:
    base = {"dataset": "syn", "status": "finished", "fit_s": 1.0, "epoch_s": 0.5, "epochs": 2, "wall_s": 1.5,
            "peak_rss_mb": 100.0, "delta_rss_mb": 5.0}
    return [
        {**base, "model": "pop", "seed": 0, "recall@20": 0.1, "ndcg@10": 0.05},
        {**base, "model": "mf", "seed": 0, "recall@20": 0.30, "ndcg@10": 0.10},
        {**base, "model": "pop", "seed": 1, "recall@20": 0.2, "ndcg@10": 0.07},
        {**base, "model": "mf", "seed": 1, "recall@20": 0.40, "ndcg@10": 0.14, "peak_rss_mb": 120.0},
    ]


def test_reference_ratio(tmp_path: Path) -> None:
    suite = _refs_suite(tmp_path)
    rows = {r["model"]: r for r in aggregate(suite, _records())}
    mf = rows["mf"]
    assert mf["recall@20_mean"] == pytest.approx(0.35)
    assert mf["recall@20_std"] == pytest.approx(statistics.stdev([0.3, 0.4]))
    # first published entry listing the metric: recall from paperA, ndcg from paperB
    assert (mf["recall@20_published"], mf["recall@20_ratio"]) == (0.5, pytest.approx(0.7))
    assert (mf["ndcg@10_published"], mf["ndcg@10_ratio"]) == (0.2, pytest.approx(0.6))
    assert mf["peak_rss_mb_max"] == 120.0
    assert rows["pop"]["recall@20_published"] is None and rows["pop"]["recall@20_ratio"] is None
    # a chosen source
    assert find_reference(suite.references["syn"], "MF", "recall@20", "paperB").value == 0.25  # type: ignore[union-attr]
    assert find_reference(suite.references["syn"], "MF", "ndcg@10", "paperA") is None
    # published in percent: scale 0.01
    assert find_reference(suite.references["syn"], "MF", "recall@20", None, 0.01).value == pytest.approx(0.005)  # type: ignore[union-attr]

    from gnnrec.bench.report import render_markdown

    md = render_markdown(suite, list(rows.values()), None)
    assert (
        "| model | seeds | recall@20 | recall@20 published | recall@20 ratio | ndcg@10 | ndcg@10 published | "
        "ndcg@10 ratio | fit s | s/epoch | epochs | peak MB | published as |" in md
    )
    assert "| mf | 2 | 0.3500 ± 0.0707 | 0.5000 | 0.700 | 0.1200 ± 0.0283 | 0.2000 | 0.600 |" in md
    assert "- [paperA] (syn, `refs.yaml`): A et al., 2020" in md


def test_peak_memory_is_per_block() -> None:
    import numpy as np

    from gnnrec.bench.memory import PeakMemory

    with PeakMemory() as big:
        a = np.ones(40_000_000)  # 305 MiB
        a[::512] = 2.0
        del a
    with PeakMemory() as small:
        b = np.ones(5_000_000)  # 38 MiB
        b[::512] = 2.0
        del b
    assert big.delta_mb > 250
    assert 25 < small.delta_mb < 150  # not the earlier block's peak


def test_jobs_run_data_groups_in_worker_processes(bench_run: dict[str, Any]) -> None:
    """Two seeds = two data groups, one spawned worker each: same numbers as in-process."""
    out = bench_run["tmp"] / "out-jobs"
    assert main(["bench", str(bench_run["suite"]), "--out", str(out), "--jobs", "2", "-q", "--no-plots"]) == 0
    for model in ("pop", "mf"):
        for seed in (0, 1):
            ours = _cell_metrics(out, model, seed)
            assert ours["test"] == _cell_metrics(bench_run["out"], model, seed)["test"]
            assert ours["bench"]["peak_rss_mb"] > 0
    rows = {r["model"]: r for r in _csv(out / "table.csv")}
    assert rows["mf"]["seeds"] == "2"
