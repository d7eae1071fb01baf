"""Smoke tests of benchmarks/ingest_throughput.py on a ~20k-row synthetic log.

The benchmark's speed ratio is only fair when the pandas reference does the same work as
gnnrec, so the key check is that both produce identical outputs (users, items, train /
valid / test / excluded rows, edges per behaviour, adjacency). No timing assertions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "ingest_throughput.py"
ROWS = 20_000


def _load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ingest_throughput_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load_benchmark()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-data")


@pytest.fixture(scope="module")
def cli_result(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, dict[str, Any]]:
    """One run of the script as a user runs it (fresh child processes for both sides)."""
    out = tmp_path_factory.mktemp("bench-out")
    env = dict(os.environ)
    env.setdefault("TMPDIR", str(tmp_path_factory.getbasetemp()))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--rows", str(ROWS), "--out", str(out), "--data-dir", str(data_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads((out / "result.json").read_text())


def test_script_writes_result_json_with_expected_keys(
    cli_result: tuple[Path, dict[str, Any]], bench: ModuleType
) -> None:
    _, result = cli_result
    for key in (
        "command",
        "date",
        "machine",
        "data",
        "split",
        "repeat",
        "gnnrec",
        "pandas",
        "ratio",
        "equivalent",
        "mismatches",
        "target_rows_per_s",
        "target_met",
    ):
        assert key in result, key
    assert result["data"]["rows"] == ROWS
    assert result["split"] == "random"
    assert result["target_rows_per_s"] == 2_000_000
    for key in ("nproc", "cpu_model", "ram_gib", "versions"):
        assert key in result["machine"], key
    for impl in ("gnnrec", "pandas"):
        side = result[impl]
        assert set(side["stages_s"]) == {"read", "validate", "build", "split", "graph"}
        assert set(side["substages_s"]) == {"graph.edges", "graph.adjacency"}
        assert sum(side["substages_s"].values()) <= side["stages_s"]["graph"] * 1.001 + 1e-6
        assert all(v >= 0 for v in side["stages_s"].values())
        assert side["total_s"] == pytest.approx(sum(side["stages_s"].values()), rel=1e-9)
        assert side["rows_per_s"] == pytest.approx(ROWS / side["total_s"])
        # a fresh process per implementation: at least the imports are resident
        assert side["peak_rss_mb"] >= side["peak_rss_after_import_mb"] > 0
        assert len(side["runs"]) == 1
        assert len(side["runs"][0]["loadavg_before"]) == 3
        assert side["total_s_min"] == pytest.approx(side["total_s"])  # one run: best = median
    assert set(result["ratio"]) == {"speed", "memory", "stages_speed"}
    assert result["ratio"]["speed"] == pytest.approx(
        result["gnnrec"]["rows_per_s"] / result["pandas"]["rows_per_s"]
    )


def test_gnnrec_and_pandas_outputs_are_identical(cli_result: tuple[Path, dict[str, Any]]) -> None:
    _, result = cli_result
    g, p = result["gnnrec"]["counts"], result["pandas"]["counts"]
    assert result["equivalent"] is True, result["mismatches"]
    assert result["mismatches"] == []
    for key in (
        "rows_read",
        "events",
        "users",
        "items",
        "categories",
        "train",
        "valid",
        "test",
        "excluded",
        "edges",
        "edges_by_behavior",
        "positives",
        "adj_nnz",
        "adj_shape",
        "dropped",
    ):
        assert g[key] == p[key], key
    assert g["rows_read"] == ROWS
    # the split really holds something out and the graph is non-trivial
    assert g["valid"] > 0 and g["test"] > 0 and g["excluded"] > 0
    assert g["train"] + g["valid"] + g["test"] + g["excluded"] == g["events"]
    assert set(g["edges_by_behavior"]) == {"view", "cart", "fav", "buy"}
    assert g["edges"] == sum(g["edges_by_behavior"].values())
    assert g["adj_nnz"] % 2 == 0 and g["adj_shape"] == [g["users"] + g["items"]] * 2
    assert g["adj_sum"] == pytest.approx(p["adj_sum"], rel=1e-4)


def test_result_markdown_has_the_table(cli_result: tuple[Path, dict[str, Any]]) -> None:
    out, result = cli_result
    md = (out / "result.md").read_text()
    assert md.startswith("# Ingest + split + graph build throughput")
    assert "| metric | gnnrec | pandas | ratio |" in md
    for row in (
        "| read (s) |",
        "| validate (s) |",
        "| build (s) |",
        "| split (s) |",
        "| graph (s) |",
        "| **total (s)** |",
        "| **rows/s** |",
        "| **peak RSS (MiB)** |",
    ):
        assert row in md, row
    assert "Outputs (identical in both implementations)" in md
    assert f"{result['gnnrec']['counts']['users']:,} users" in md
    assert "Target >= 2 M rows/s" in md
    assert "| best run: total (s) / rows/s |" in md


@pytest.mark.parametrize(("fmt", "split"), [("parquet", "temporal"), ("csv", "temporal")])
def test_other_formats_and_splits_agree_in_process(
    bench: ModuleType, data_dir: Path, fmt: str, split: str, cli_result: tuple[Path, dict[str, Any]]
) -> None:
    # cli_result first: it has generated and cached both the Parquet and the CSV log
    path, meta = bench.ensure_log(ROWS, 0, fmt, data_dir)
    assert path.suffix == f".{fmt}"
    assert meta["rows"] == ROWS
    g = bench.measure("gnnrec", path, fmt, split, 0)
    p = bench.measure("pandas", path, fmt, split, 0)
    assert bench._compare(g["counts"], p["counts"]) == []
    assert g["counts"]["rows_read"] == ROWS
    assert g["counts"]["valid"] > 0 and g["counts"]["test"] > 0


def test_profile_writes_top_functions_per_stage(
    bench: ModuleType, data_dir: Path, tmp_path: Path, cli_result: tuple[Path, dict[str, Any]]
) -> None:
    path, _ = bench.ensure_log(ROWS, 0, "parquet", data_dir)
    out = tmp_path / "profile.txt"
    res = bench.measure("gnnrec", path, "parquet", "random", 0, profile_path=out)
    text = out.read_text()
    for stage in ("read", "validate", "build", "split", "graph"):
        assert f" {stage}: " in text, stage
    assert "validate_log" in text and "build_train_data" in text
    assert res["counts"]["rows_read"] == ROWS


def test_compare_reports_a_difference(bench: ModuleType) -> None:
    a = {"users": 3, "items": 4, "edges_by_behavior": {"buy": 2}, "adj_sum": 10.0}
    assert bench._compare(a, dict(a)) == []
    diffs = bench._compare(a, {**a, "edges_by_behavior": {"buy": 3}})
    assert diffs == ["edges_by_behavior: gnnrec={'buy': 2} pandas={'buy': 3}"]
    assert bench._compare(a, {**a, "adj_sum": 10.1}) == ["adj_sum: gnnrec=10.0 pandas=10.1"]


def test_importing_the_script_does_no_work() -> None:
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('b', {str(SCRIPT)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "heavy = [x for x in ('polars', 'pandas', 'torch', 'numpy', 'gnnrec') if x in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
