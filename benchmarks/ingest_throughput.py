"""Ingest + split + graph-build throughput of gnnrec against a straightforward pandas pipeline.

Usage (from the repository root, with the project venv)::

    python benchmarks/ingest_throughput.py [--rows 10000000] [--format csv|parquet] [--out DIR]
                                           [--repeat 1] [--split random|temporal]

What it does:

1. Generates (once, cached under ``--data-dir``, default ``$TMPDIR/gnnrec-bench``, keyed by rows,
   seed and format) a synthetic behaviour log of exactly ``--rows`` rows with
   :func:`gnnrec.data.synthetic.write_synthetic`, choosing ``num_users`` / ``num_items`` from a
   small calibration run so that the simulator produces slightly more than ``--rows`` events,
   then keeping the first ``--rows``. CSV is the default because it is the realistic raw input.
2. Reads the file once so both implementations start with a warm page cache.
3. Runs each implementation in a fresh subprocess (so peak RSS, ``ru_maxrss`` of the child,
   belongs to one implementation only), ``--repeat`` times, alternating the order:

   * ``gnnrec``: ``read_log`` → ``validate_log`` → ``build_interactions`` → ``make_split`` →
     ``build_train_data`` + ``TrainData.norm_adj()`` (the cached CSR adjacency LightGCN uses);
   * ``pandas``: the same work written the obvious way with pandas / numpy / scipy.sparse
     (``benchmarks/pandas_reference.py``).

   Library imports happen before the clock starts in both children and are reported apart.
4. Checks that both produce identical outputs (users, items, categories, events, train / valid /
   test / excluded rows, edges per behaviour, adjacency non-zeros): only then is the ratio a
   like-for-like comparison. A mismatch is reported and makes the exit status 1.
5. Prints a table and writes ``result.json`` and ``result.md`` into ``--out``.

Rows/s is input log rows divided by the end-to-end seconds (read through adjacency). The target
for gnnrec is >= 2 million rows/s on 2 cores. Timings on a shared machine are noisy: use
``--repeat`` and read the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: end-to-end target for gnnrec, input rows per second
TARGET_ROWS_PER_S = 2_000_000
#: pipeline stages, in order; each child reports seconds for each of them
STAGES: tuple[str, ...] = ("read", "validate", "build", "split", "graph")
IMPLEMENTATIONS: tuple[str, ...] = ("gnnrec", "pandas")
#: outputs that must be identical between the implementations
COUNT_KEYS: tuple[str, ...] = (
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
)
#: relative tolerance for the sum of the normalised adjacency (float32 vs float64 sums)
ADJ_SUM_RTOL = 1e-4
#: bump when the way the synthetic log is produced changes (invalidates the cache)
DATA_VERSION = 1
#: the simulator's users are scaled up by this much so that at least --rows events exist
OVERSHOOT = 1.04
#: catalogue size relative to users (the SyntheticConfig defaults: 3000 items, 2000 users)
ITEMS_PER_USER = 1.5
_CHILD_RESULT_PREFIX = "@@RESULT@@ "
_BENCH_DIR = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- child side


def _rss_mb() -> float:
    """Current resident set size in MiB (from /proc, no psutil needed)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):  # pragma: no cover - non-Linux
        return float("nan")


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux: ``VmHWM`` from /proc/self/status, the high-water mark of this process's own
    address space. ``ru_maxrss`` is not usable in a child: ``execve`` carries the parent's
    high-water mark at fork time over into it, so every child would report at least the
    parent's size. Elsewhere ``ru_maxrss`` is the best there is.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):  # pragma: no cover - non-Linux
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


class _StageClock:
    """Times named stages, prints progress to stderr and records the peak RSS after each;
    optionally runs cProfile per stage (``profile=True``; slows the run, so such runs are
    never the reported ones)."""

    def __init__(self, impl: str, profile: bool = False) -> None:
        self.impl = impl
        self.seconds: dict[str, float] = {}
        self.substages: dict[str, float] = {}
        self.peak_after: dict[str, float] = {}
        self.profiles: dict[str, str] = {}
        self._profile = profile
        self._prof: Any = None
        self._name = ""
        self._t0 = 0.0
        self._created = time.perf_counter()

    def imported(self) -> None:
        """Mark the end of the library imports (not part of the timed pipeline)."""
        self.seconds["import"] = time.perf_counter() - self._created
        self.peak_after["import"] = _peak_rss_mb()

    def sub(self, name: str, seconds: float) -> None:
        """Record a part of the current stage (e.g. ``graph.adjacency``)."""
        self.substages[f"{self._name}.{name}"] = seconds

    def __call__(self, name: str) -> _StageClock:
        self._name = name
        return self

    def __enter__(self) -> None:
        print(f"  [{self.impl}] {self._name} ...", file=sys.stderr, flush=True)
        if self._profile:
            import cProfile

            self._prof = cProfile.Profile()
            self._prof.enable()
        self._t0 = time.perf_counter()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        dt = time.perf_counter() - self._t0
        if self._prof is not None:
            self._prof.disable()
            self.profiles[self._name] = _profile_text(self._prof)
            self._prof = None
        if exc_type is None:
            self.seconds[self._name] = self.seconds.get(self._name, 0.0) + dt
            self.peak_after[self._name] = _peak_rss_mb()
            print(
                f"  [{self.impl}] {self._name} done in {dt:.2f} s (peak RSS {_peak_rss_mb():.0f} MiB)",
                file=sys.stderr,
                flush=True,
            )


def _profile_text(prof: Any, top: int = 25) -> str:
    import io
    import pstats

    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def _run_gnnrec(path: Path, fmt: str, split_mode: str, seed: int, clock: _StageClock) -> dict[str, Any]:
    import numpy as np

    from gnnrec.config import DataConfig, GraphConfig, SplitConfig
    from gnnrec.data.ingest import read_log
    from gnnrec.data.interactions import build_interactions
    from gnnrec.data.schema import validate_log
    from gnnrec.data.splits import make_split
    from gnnrec.data.types import EXCLUDED, TEST, TRAIN, VALID
    from gnnrec.graph.build import build_train_data

    # drop mode: a rare exact duplicate in a big simulated log is counted, not fatal
    data_cfg = DataConfig.model_validate(
        {"dataset": "file", "path": str(path), "format": fmt, "on_error": "drop"}
    )
    split_cfg = SplitConfig.model_validate({"mode": split_mode})
    graph_cfg = GraphConfig.model_validate({})
    clock.imported()

    with clock("read"):
        raw = read_log(path, format=fmt)
        rows_read = raw.frame.height
    with clock("validate"):
        valid = validate_log(raw, data_cfg)
        del raw  # a pipeline keeps only the latest stage's output
    with clock("build"):
        table = build_interactions(valid, data_cfg)
        del valid
    with clock("split"):
        split = make_split(table, split_cfg, seed)
    with clock("graph"):
        t = time.perf_counter()
        data = build_train_data(table, split, graph_cfg, positives="target")
        clock.sub("edges", time.perf_counter() - t)
        t = time.perf_counter()
        adj = data.norm_adj()
        clock.sub("adjacency", time.perf_counter() - t)

    a = split.assign
    crow = adj.crow_indices()
    return {
        "rows_read": int(rows_read),
        "events": len(table),
        "users": table.num_users,
        "items": table.num_items,
        "categories": table.num_categories,
        "train": int(np.count_nonzero(a == TRAIN)),
        "valid": int(np.count_nonzero(a == VALID)),
        "test": int(np.count_nonzero(a == TEST)),
        "excluded": int(np.count_nonzero(a == EXCLUDED)),
        "edges": int(sum(int(e.shape[1]) for e in data.edge_index.values())),
        "edges_by_behavior": {b: int(e.shape[1]) for b, e in sorted(data.edge_index.items())},
        "positives": int(data.pos_index.shape[1]),
        "adj_nnz": int(crow[-1]),
        "adj_shape": [int(s) for s in adj.shape],
        "adj_sum": float(adj.values().double().sum()),
        "dropped": {k: int(v) for k, v in sorted(table.dropped.items())},
    }


def _run_pandas(path: Path, fmt: str, split_mode: str, seed: int, clock: _StageClock) -> dict[str, Any]:
    sys.path.insert(0, str(_BENCH_DIR))
    import pandas_reference as ref

    clock.imported()

    with clock("read"):
        df = ref.read(path, fmt)
        rows_read = len(df)
    with clock("validate"):
        df, dropped = ref.validate(df)
    with clock("build"):
        table = ref.build(df, dropped)
        del df
    with clock("split"):
        assign = ref.split(table, split_mode, seed)
    with clock("graph"):
        t = time.perf_counter()
        edges, positives = ref.edges(table, assign)
        clock.sub("edges", time.perf_counter() - t)
        t = time.perf_counter()
        adj = ref.adjacency(table, assign)
        clock.sub("adjacency", time.perf_counter() - t)
    return ref.summarize(table, assign, ref.Graph(edges, positives, adj), rows_read)


def measure(
    impl: str, path: Path, fmt: str, split_mode: str, seed: int, profile_path: Path | None = None
) -> dict[str, Any]:
    """Run one implementation once: stage seconds, peak RSS, thread pools and output counts.

    Meant to run in a fresh process (``--child``) so that imports and peak RSS belong to
    this implementation alone; in-process calls (tests) get the same counts. With
    ``profile_path``, each stage runs under cProfile and the top functions per stage are
    written there.
    """
    rss_start = _rss_mb()
    clock = _StageClock(impl, profile=profile_path is not None)
    runner = {"gnnrec": _run_gnnrec, "pandas": _run_pandas}[impl]
    counts = runner(Path(path), fmt, split_mode, seed, clock)
    total = sum(clock.seconds[s] for s in STAGES)
    threads: dict[str, Any] = {}
    if "polars" in sys.modules:
        threads["polars"] = sys.modules["polars"].thread_pool_size()
    if "torch" in sys.modules:
        threads["torch"] = sys.modules["torch"].get_num_threads()
    if "pyarrow" in sys.modules:  # pandas 3 keeps strings in Arrow arrays
        threads["pyarrow"] = sys.modules["pyarrow"].cpu_count()
    if profile_path is not None:
        text = [f"cProfile of {impl} per stage ({path}, split {split_mode})\n"]
        for stage in STAGES:
            text.append(f"\n{'=' * 30} {stage}: {clock.seconds[stage]:.2f} s (under the profiler)\n")
            text.append(clock.profiles.get(stage, ""))
        Path(profile_path).write_text("".join(text))
    return {
        "impl": impl,
        "stages": {s: clock.seconds[s] for s in STAGES},
        "substages": dict(clock.substages),
        "import_s": clock.seconds["import"],
        "total_s": total,
        "rows_per_s": counts["rows_read"] / total if total > 0 else float("inf"),
        "peak_rss_mb": _peak_rss_mb(),
        "rss_at_start_mb": rss_start,
        "peak_rss_after_import_mb": clock.peak_after["import"],
        "peak_rss_after_stage_mb": {s: clock.peak_after[s] for s in STAGES},
        "threads": threads,
        "counts": counts,
    }


def child_main(args: argparse.Namespace) -> int:
    """Run one implementation once and print its measurements as one JSON line on stdout."""
    import warnings

    # torch announces its CSR support as beta on first use; it is noise in a progress log
    warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
    profile = Path(args.profile_out) if args.profile_out else None
    out = measure(args.child, Path(args.input), args.format, args.split, args.seed, profile)
    print(_CHILD_RESULT_PREFIX + json.dumps(out), flush=True)
    return 0


# --------------------------------------------------------------------------- data


def _synthetic_config(num_users: int) -> Any:
    """Simulator defaults, scaled: the default shape has 1.5 items per user."""
    from gnnrec.config import SyntheticConfig

    return SyntheticConfig.model_validate(
        {"num_users": num_users, "num_items": max(10, round(num_users * ITEMS_PER_USER))}
    )


def _count_rows(path: Path) -> int:
    import polars as pl

    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def ensure_log(rows: int, seed: int, fmt: str, data_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Return the cached synthetic log of exactly ``rows`` rows, generating it when missing.

    The simulator is calibrated on a small run (events per simulated user), then asked for
    ``OVERSHOOT`` times the users needed so that it produces at least ``rows`` events; the
    first ``rows`` are kept. The Parquet file is always made; CSV is converted from it.
    """
    import polars as pl

    from gnnrec.data.synthetic import write_synthetic

    data_dir.mkdir(parents=True, exist_ok=True)
    stem = f"synthetic-v{DATA_VERSION}-r{rows}-s{seed}"
    parquet = data_dir / f"{stem}.parquet"
    target = data_dir / f"{stem}.{fmt}"
    meta_path = data_dir / f"{stem}.json"
    if target.exists() and meta_path.exists():
        return target, json.loads(meta_path.read_text())

    t0 = time.perf_counter()
    if not parquet.exists() or not meta_path.exists():
        calib_users = min(2000, max(200, rows // 80))  # about 80 events per simulated user
        calib = data_dir / f"calibration-s{seed}.parquet"
        print(f"calibrating the simulator on {calib_users} users ...", file=sys.stderr, flush=True)
        write_synthetic(calib, _synthetic_config(calib_users), seed)
        per_user = _count_rows(calib) / calib_users
        for extra in data_dir.glob(f"calibration-s{seed}*"):
            extra.unlink()
        num_users = max(1, int(rows / per_user * OVERSHOOT) + 1)
        cfg = _synthetic_config(num_users)
        for _ in range(4):
            tmp = data_dir / f"{stem}.full.parquet"
            print(
                f"generating {rows:,} rows: {cfg.num_users:,} users, {cfg.num_items:,} items "
                f"({per_user:.1f} events/user) ...",
                file=sys.stderr,
                flush=True,
            )
            write_synthetic(tmp, cfg, seed)
            produced = _count_rows(tmp)
            if produced >= rows:
                break
            cfg = _synthetic_config(int(cfg.num_users * rows / produced * OVERSHOOT) + 1)
        else:  # pragma: no cover - the simulator would have to be wildly off
            raise RuntimeError(f"the simulator produced {produced} < {rows} rows")
        # Keep exactly `rows` rows; the tail users lose some events, which does not matter here.
        pl.scan_parquet(tmp).head(rows).sink_parquet(parquet)
        tmp.unlink()
        for extra in data_dir.glob(f"{stem}.full*"):  # the simulator's ground truth file
            extra.unlink()
        meta = {
            "rows": rows,
            "seed": seed,
            "produced_rows": produced,
            "synthetic": cfg.model_dump(mode="json"),
            "generate_s": None,
        }
    else:
        meta = json.loads(meta_path.read_text())
    if fmt == "csv" and not target.exists():
        print(f"writing CSV {target.name} ...", file=sys.stderr, flush=True)
        tmp_csv = target.with_suffix(".csv.tmp")
        pl.scan_parquet(parquet).sink_csv(tmp_csv)
        tmp_csv.replace(target)
    if meta.get("generate_s") is None:
        meta["generate_s"] = round(time.perf_counter() - t0, 1)
    meta["files"] = {
        p.suffix.lstrip("."): p.stat().st_size for p in (parquet, data_dir / f"{stem}.csv") if p.exists()
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return target, meta


def _warm_page_cache(path: Path) -> None:
    """Read the file once so neither implementation pays the cold-disk read."""
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


# --------------------------------------------------------------------------- parent side


def _run_child(
    impl: str, path: Path, args: argparse.Namespace, profile_out: Path | None = None
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        impl,
        "--input",
        str(path),
        "--format",
        args.format,
        "--split",
        args.split,
        "--seed",
        str(args.seed),
    ]
    if profile_out is not None:
        cmd += ["--profile-out", str(profile_out)]
    env = dict(os.environ)
    if args.threads:
        for var in ("POLARS_MAX_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(args.threads)
    # stderr (progress lines) goes straight through; stdout carries the result line
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=Path.cwd(), check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_CHILD_RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stdout.write(proc.stdout)
        raise RuntimeError(f"{impl} run failed with exit status {proc.returncode}")
    return json.loads(lines[-1][len(_CHILD_RESULT_PREFIX) :])


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def _aggregate(runs: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    """Median stage times over repeats; the largest peak RSS."""
    stages = {s: _median([r["stages"][s] for r in runs]) for s in STAGES}
    substages = {k: _median([r["substages"][k] for r in runs]) for k in runs[0]["substages"]}
    totals = [r["total_s"] for r in runs]
    total = _median(totals)
    return {
        "stages_s": stages,
        "substages_s": substages,
        "total_s": total,
        "total_s_min": min(totals),
        "total_s_all": totals,
        "rows_per_s": rows / total if total > 0 else float("inf"),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "peak_rss_after_import_mb": max(r["peak_rss_after_import_mb"] for r in runs),
        "work_rss_mb": max(r["peak_rss_mb"] - r["peak_rss_after_import_mb"] for r in runs),
        "peak_rss_after_stage_mb": runs[0]["peak_rss_after_stage_mb"],
        "import_s": _median([r["import_s"] for r in runs]),
        "threads": runs[0]["threads"],
        "counts": runs[0]["counts"],
    }


def _compare(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Differences between two count dicts over COUNT_KEYS (empty when identical)."""
    diffs = []
    for key in COUNT_KEYS:
        if a.get(key) != b.get(key):
            diffs.append(f"{key}: gnnrec={a.get(key)!r} pandas={b.get(key)!r}")
    sa, sb = a.get("adj_sum", 0.0), b.get("adj_sum", 0.0)
    if abs(sa - sb) > ADJ_SUM_RTOL * max(abs(sa), abs(sb), 1.0):
        diffs.append(f"adj_sum: gnnrec={sa!r} pandas={sb!r}")
    return diffs


def machine_info() -> dict[str, Any]:
    """CPU model, core count, RAM, load and package versions."""
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover - non-Linux
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:  # pragma: no cover
        pass
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        usable = os.cpu_count()
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for dist in ("polars", "pandas", "numpy", "scipy", "torch", "pyarrow"):
        try:  # from the installed metadata: importing torch here would cost seconds
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover
            versions[dist] = None
    commit = None
    try:
        res = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=_BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        commit = res.stdout.strip() or None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if commit and dirty.stdout.strip():
            commit += "+dirty"  # measured code differs from the commit
    except (OSError, subprocess.SubprocessError):  # pragma: no cover
        pass
    return {
        "nproc": usable,
        "cpu_model": cpu_model,
        "ram_gib": ram_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": list(os.getloadavg()),
        "versions": versions,
        "commit": commit,
    }


def _fmt_s(x: float) -> str:
    return f"{x:.2f}"


def _ratio(num: float, den: float) -> str:
    return f"{num / den:.2f}x" if den > 0 else "n/a"


def _table_rows(result: dict[str, Any]) -> list[list[str]]:
    """Rows of the comparison table: metric, gnnrec, pandas, ratio."""
    g, p = result["gnnrec"], result["pandas"]
    rows = []
    for s in STAGES:
        rows.append(
            [
                f"{s} (s)",
                _fmt_s(g["stages_s"][s]),
                _fmt_s(p["stages_s"][s]),
                _ratio(p["stages_s"][s], g["stages_s"][s]),
            ]
        )
        for key in g["substages_s"]:
            if key.startswith(f"{s}.") and key in p["substages_s"]:
                gs, ps = g["substages_s"][key], p["substages_s"][key]
                rows.append([f"&nbsp;&nbsp;{key} (s)", _fmt_s(gs), _fmt_s(ps), _ratio(ps, gs)])
    rows.append(
        ["**total (s)**", _fmt_s(g["total_s"]), _fmt_s(p["total_s"]), _ratio(p["total_s"], g["total_s"])]
    )
    rows.append(
        [
            "**rows/s**",
            f"{g['rows_per_s'] / 1e6:.2f} M",
            f"{p['rows_per_s'] / 1e6:.2f} M",
            _ratio(g["rows_per_s"], p["rows_per_s"]),
        ]
    )
    rows.append(
        [
            "best run: total (s) / rows/s",
            f"{g['total_s_min']:.2f} / {result['data']['rows'] / g['total_s_min'] / 1e6:.2f} M",
            f"{p['total_s_min']:.2f} / {result['data']['rows'] / p['total_s_min'] / 1e6:.2f} M",
            _ratio(p["total_s_min"], g["total_s_min"]),
        ]
    )
    rows.append(
        [
            "**peak RSS (MiB)**",
            f"{g['peak_rss_mb']:.0f}",
            f"{p['peak_rss_mb']:.0f}",
            _ratio(g["peak_rss_mb"], p["peak_rss_mb"]),
        ]
    )
    rows.append(
        [
            "peak RSS above imports (MiB)",
            f"{g['work_rss_mb']:.0f}",
            f"{p['work_rss_mb']:.0f}",
            _ratio(g["work_rss_mb"], p["work_rss_mb"]),
        ]
    )
    rows.append(
        [
            "imports, not timed (s)",
            _fmt_s(g["import_s"]),
            _fmt_s(p["import_s"]),
            "",
        ]
    )
    return rows


RATIO_NOTE = (
    "Ratio column: time rows are pandas / gnnrec (speed-up, > 1 means gnnrec is faster); "
    "rows/s is gnnrec / pandas; memory rows are gnnrec / pandas (< 1 means gnnrec uses less)."
)


def render_markdown(result: dict[str, Any]) -> str:
    """The result as a Markdown report (command, machine, data, table, equivalence)."""
    m, d = result["machine"], result["data"]
    g = result["gnnrec"]
    loads = "; ".join(
        f"{impl} " + ", ".join(f"{run['loadavg_before'][0]:.1f}" for run in result[impl]["runs"])
        for impl in IMPLEMENTATIONS
    )
    lines = [
        "# Ingest + split + graph build throughput",
        "",
        f"- Command: `{result['command']}`",
        f"- Date: {result['date']}",
        (
            f"- Machine: {m['nproc']} cores ({m['cpu_model']}), {m['ram_gib']} GiB RAM; "
            f"1-min load average before each run: {loads}"
        ),
        (
            f"- Software: Python {m['python']}, "
            + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
            + (f"; commit {m['commit']}" if m.get("commit") else "")
        ),
        f"- Threads: gnnrec {g['threads']}, pandas {result['pandas']['threads']}",
        (
            f"- Data: {d['rows']:,} rows ({d['format']}, {d['file_mb']:.0f} MB), synthetic seed {d['seed']}, "
            f"{d['synthetic']['num_users']:,} simulated users, {d['synthetic']['num_items']:,} items, "
            f"{d['synthetic']['num_categories']} categories; split `{result['split']}`"
        ),
        (
            f"- Repeats: {result['repeat']} per implementation, each in a fresh process, order alternating; "
            "stage times are medians, peak RSS the maximum, best run = the fastest total"
        ),
        "",
        "| metric | gnnrec | pandas | ratio |",
        "|---|---:|---:|---:|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in _table_rows(result)]
    lines += ["", RATIO_NOTE, ""]
    c = g["counts"]
    lines.append(
        f"Outputs ({'identical' if result['equivalent'] else 'DIFFERENT'} in both implementations): "
        f"{c['events']:,} events, {c['users']:,} users, {c['items']:,} items, {c['categories']:,} categories; "
        f"train {c['train']:,}, valid {c['valid']:,}, test {c['test']:,}, excluded {c['excluded']:,}; "
        f"{c['edges']:,} edges ({', '.join(f'{k} {v:,}' for k, v in c['edges_by_behavior'].items())}); "
        f"adjacency nnz {c['adj_nnz']:,}."
    )
    if not result["equivalent"]:
        lines += ["", "Mismatches:", ""] + [f"- {x}" for x in result["mismatches"]]
    met = "met" if result["target_met"] else "NOT met"
    lines += [
        "",
        (
            f"Target >= {TARGET_ROWS_PER_S / 1e6:.0f} M rows/s end to end: **{met}** "
            f"(gnnrec {g['rows_per_s'] / 1e6:.2f} M rows/s median, "
            f"{result['data']['rows'] / g['total_s_min'] / 1e6:.2f} M rows/s best run)."
        ),
        "",
    ]
    return "\n".join(lines)


def _print_table(result: dict[str, Any]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a declared dependency
        print(render_markdown(result))
        return
    table = Table(
        title=f"ingest + split + graph, {result['data']['rows']:,} rows ({result['data']['format']})"
    )
    for col, justify in (("metric", "left"), ("gnnrec", "right"), ("pandas", "right"), ("ratio", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in _table_rows(result):
        table.add_row(*[cell.replace("**", "").replace("&nbsp;", " ") for cell in row])
    console = Console()
    console.print(table)
    console.print(RATIO_NOTE)
    g = result["gnnrec"]
    status = "[green]identical[/green]" if result["equivalent"] else "[red]DIFFERENT[/red]"
    console.print(f"outputs: {status}")
    for x in result["mismatches"]:
        console.print(f"  [red]{x}[/red]")
    met = "[green]met[/green]" if result["target_met"] else "[red]NOT met[/red]"
    console.print(
        f"target >= {TARGET_ROWS_PER_S / 1e6:.0f} M rows/s: {met} ({g['rows_per_s'] / 1e6:.2f} M rows/s)"
    )


def parent_main(args: argparse.Namespace, argv: list[str]) -> int:
    """Generate or reuse the log, run both implementations, compare, report."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(os.environ.get("TMPDIR") or "/tmp")
    data_dir = Path(args.data_dir) if args.data_dir else tmp / "gnnrec-bench"
    machine = machine_info()
    path, meta = ensure_log(args.rows, args.seed, args.format, data_dir)
    print(f"log: {path} ({path.stat().st_size / 1e6:.0f} MB)", file=sys.stderr, flush=True)
    _warm_page_cache(path)

    runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in IMPLEMENTATIONS}
    for r in range(args.repeat):
        order = IMPLEMENTATIONS if r % 2 == 0 else IMPLEMENTATIONS[::-1]
        for impl in order:
            load = list(os.getloadavg())
            print(f"[{r + 1}/{args.repeat}] {impl} (load average {load[0]:.2f})", file=sys.stderr, flush=True)
            run = _run_child(impl, path, args)
            run["loadavg_before"] = load
            runs[impl].append(run)
    if args.profile:
        print("[profile] gnnrec under cProfile (not a reported run)", file=sys.stderr, flush=True)
        _run_child("gnnrec", path, args, profile_out=out.resolve() / "profile_gnnrec.txt")

    result: dict[str, Any] = {
        "benchmark": "ingest_throughput",
        "command": "python benchmarks/ingest_throughput.py " + " ".join(shlex.quote(a) for a in argv),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),  # noqa: UP017 (3.10)
        "machine": machine,
        "split": args.split,
        "repeat": args.repeat,
        "data": {
            "path": str(path),
            "format": args.format,
            "rows": args.rows,
            "seed": args.seed,
            "file_mb": path.stat().st_size / 1e6,
            "synthetic": meta["synthetic"],
        },
    }
    for impl in IMPLEMENTATIONS:
        result[impl] = _aggregate(runs[impl], args.rows)
        result[impl]["runs"] = runs[impl]
    mismatches = _compare(result["gnnrec"]["counts"], result["pandas"]["counts"])
    for impl in IMPLEMENTATIONS:  # repeats must agree with themselves too (determinism)
        for run in runs[impl][1:]:
            mismatches += [
                f"{impl} repeat differs: {x}" for x in _compare(runs[impl][0]["counts"], run["counts"])
            ]
    result["equivalent"] = not mismatches
    result["mismatches"] = mismatches
    g, p = result["gnnrec"], result["pandas"]
    result["ratio"] = {
        "speed": g["rows_per_s"] / p["rows_per_s"],
        "memory": g["peak_rss_mb"] / p["peak_rss_mb"],
        "stages_speed": {s: p["stages_s"][s] / g["stages_s"][s] for s in STAGES if g["stages_s"][s] > 0},
    }
    result["target_rows_per_s"] = TARGET_ROWS_PER_S
    result["target_met"] = g["rows_per_s"] >= TARGET_ROWS_PER_S
    machine["loadavg_end"] = list(os.getloadavg())

    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "result.md").write_text(render_markdown(result))
    _print_table(result)
    print(f"wrote {out / 'result.json'} and {out / 'result.md'}", file=sys.stderr)
    return 0 if result["equivalent"] else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Ingest + split + graph build throughput: gnnrec vs a pandas reference."
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="log rows (default 10M)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="log file format")
    parser.add_argument("--out", default="benchmarks/out/ingest_throughput", help="result directory")
    parser.add_argument("--repeat", type=int, default=1, help="runs per implementation")
    parser.add_argument("--split", choices=("random", "temporal"), default="random", help="split mode")
    parser.add_argument("--seed", type=int, default=0, help="simulator and split seed")
    parser.add_argument("--data-dir", default=None, help="log cache directory (default $TMPDIR/gnnrec-bench)")
    parser.add_argument("--threads", type=int, default=None, help="cap library thread pools (default: all)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the measured runs, one extra gnnrec run under cProfile (profile_gnnrec.txt)",
    )
    parser.add_argument("--child", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    return parser


def _ensure_gnnrec_importable() -> None:
    """Put the repository root on ``sys.path`` when gnnrec is not installed (running the
    script puts ``benchmarks/`` there, not the root)."""
    import importlib.util

    if importlib.util.find_spec("gnnrec") is None:
        sys.path.insert(0, str(_BENCH_DIR.parent))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _ensure_gnnrec_importable()
    args = build_parser().parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        build_parser().error("--rows and --repeat must be positive")
    if args.child:
        return child_main(args)
    return parent_main(args, argv)


if __name__ == "__main__":
    sys.exit(main())
