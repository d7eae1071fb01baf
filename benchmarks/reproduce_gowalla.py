"""Reproduce published numbers on the Gowalla split and write the comparison table.

Runs ``experiments/<model>-gowalla.yaml`` through :func:`gnnrec.runner.run` (data loading,
validation, split and graph build inside the timed region) and records per run the config,
overrides, git commit, machine, load average, wall and CPU time, and the test metrics.
By default only ``gf_cf`` runs; ``--all`` adds ``mf_bpr``, ``lightgcn`` and ``ngcf`` when
their configs exist. For models with a time target (``gf_cf``: the whole ``gnnrec run`` in
<= 30 s) the command line ``gnnrec run CONFIG`` is also timed end to end in a fresh
subprocess (interpreter start and imports included), ``--cli-repeat`` times.

Records accumulate in ``benchmarks/results/gowalla.json`` (a rerun of one model replaces only
that model's record); ``benchmarks/results/gowalla.md`` is rendered from them: ours /
published / ratio, with the published numbers and citations of
``benchmarks/references/gowalla.yaml``.

Usage (from the repository root, ``TMPDIR=$PWD/.tmp GNNREC_DATA=/path/to/data``)::

    python benchmarks/reproduce_gowalla.py                     # gf_cf
    python benchmarks/reproduce_gowalla.py --all               # + mf_bpr, lightgcn, ngcf configs
    python benchmarks/reproduce_gowalla.py --set model.params.svd=arpack --label "gf_cf[svd=arpack]" --cli-repeat 0
    python benchmarks/reproduce_gowalla.py --svd-sweep 1 2 4 8 16 --sweep-seeds 0 1   # SVD settings table
    python benchmarks/reproduce_gowalla.py --render-only       # re-render the table

The machine may be shared: the table records the load average next to every timing; on a
busy machine the timings are upper bounds. ``nice -n 10`` in front is polite there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ("gf_cf",)
ALL_MODELS = ("gf_cf", "mf_bpr", "lightgcn", "ngcf")
METRICS = ("recall@20", "ndcg@20")


def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux/macOS
        return []


def _cpu_seconds(who: int) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def config_path(model: str) -> Path:
    return ROOT / "experiments" / f"{model}-gowalla.yaml"


def run_model(
    model: str,
    overrides: list[str],
    out_dir: Path,
    label: str | None = None,
    curve_every_s: float | None = None,
    run_dir: Path | None = None,
) -> dict[str, Any]:
    """Run one model's gowalla config in this process; return its record (kept under
    ``label``, default the model name).

    ``curve_every_s``: for trainable models, also record the test metrics every that many
    training seconds (:class:`TestCurve`, all test users; monitoring only) in
    ``record["curve"]``. ``run_dir``: run into this directory (default: a fresh
    ``<out_dir>/<model>-<timestamp>``); with ``--set train.resume=true`` an interrupted or
    budget-limited run there continues from its checkpoint, and the curve is read from the
    whole ``history.csv`` (epochs before the checkpoint included).
    """
    from gnnrec.config import dump_config, load_config
    from gnnrec.eval.evaluator import Evaluator
    from gnnrec.runner import prepare_data, run
    from gnnrec.utils.runinfo import environment_info

    path = config_path(model)
    cfg = load_config(path, overrides)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017 (py3.10)
    env = environment_info()  # at the start: the commit whose code runs (later commits may land)
    load_before = _loadavg()
    cpu0 = _cpu_seconds(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    prepared = prepare_data(cfg)
    prepare_s = time.perf_counter() - t0
    curve = (
        TestCurve(
            Evaluator(cfg.eval.ks, cfg.eval.metrics, cfg.eval.batch_size),
            prepared.test,
            curve_every_s,
            clock=cfg.train.time_budget_clock,
        )
        if curve_every_s
        else None
    )
    result = run(
        cfg,
        run_dir or out_dir / f"{model}-{time.strftime('%Y%m%d-%H%M%S')}",
        progress=False,
        prepared=prepared,
        callbacks=[curve] if curve is not None else [],
    )
    wall = time.perf_counter() - t0
    cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu0
    m = result.metrics
    return {
        "model": model,
        "label": label or model,
        "config": str(path.relative_to(ROOT)),
        "overrides": overrides,
        "resolved_config": yaml.safe_load(dump_config(cfg)),
        "commit": env.get("commit"),
        "versions": {k: env.get(k) for k in ("python", "torch", "numpy", "polars")},
        "machine": {
            "cpu": _cpu_model(),
            "cpus": env.get("cpus"),
            "torch_threads": _torch_threads(),
            "platform": env.get("platform"),
            "device": m["device"],
        },
        "started_utc": started,
        "load_avg_before": load_before,
        "load_avg_after": _loadavg(),
        "prepare_s": prepare_s,
        "wall_s": wall,
        "cpu_s": cpu,
        "timing": m["timing"],
        "epochs": m["epochs"],
        "best_epoch": m["best_epoch"],
        "test": m["test"],
        "eval_users": m["eval_users"],
        "data": m["data"],
        "run_dir": str(result.run_dir),
        "cli": None,
        **_training_record(result.run_dir, curve),
    }


def _training_record(run_dir: Path, curve: TestCurve | None) -> dict[str, Any]:
    """Training minutes (from ``history.csv``) and the test curve: the history's epochs that
    carry ``test_*`` metrics (the :class:`TestCurve` points, including those recorded before
    a resumed checkpoint)."""
    import csv

    hist = run_dir / "history.csv"
    if not hist.exists():
        return {}
    rows = list(csv.DictReader(hist.open()))
    if not rows or "train_s" not in rows[-1]:
        return {}
    out: dict[str, Any] = {"train_wall_min": float(rows[-1]["train_s"]) / 60.0}
    if rows[-1].get("train_cpu_s"):
        out["train_cpu_min"] = float(rows[-1]["train_cpu_s"]) / 60.0
    if curve is not None:
        points = []
        for r in rows:
            if not r.get("test_recall@20"):
                continue
            wall, cpu = float(r["train_s"]) / 60.0, float(r.get("train_cpu_s") or "nan") / 60.0
            points.append(
                {
                    "epoch": int(float(r["epoch"])),
                    "train_min": cpu if curve.key == "train_cpu_s" else wall,
                    "train_wall_min": wall,
                    "train_cpu_min": cpu,
                    "loss": float(r["loss"]),
                    **{k: float(v) for k, v in r.items() if k.startswith("test_") and v},
                }
            )
        out["curve"] = points or curve.points
        out["curve_every_s"] = curve.every_s
    return out


class TestCurve:
    """Trainer monitor: test metrics against training time (a time-to-accuracy curve).

    Called by :class:`~gnnrec.train.trainer.Trainer` after each epoch (``on_epoch_model``;
    its time is not training time). It evaluates when the training time has passed the next
    multiple of ``every_s`` seconds (and at epoch 1), on ``sample`` test users drawn once
    with a fixed seed (``None`` = all of them) to keep monitoring cheap. The split has no
    validation set, so this curve is for *monitoring only*: it never selects a model (the
    trainer gets no ``validate`` and keeps the last epoch's weights).

    Args:
        evaluator: the run's :class:`~gnnrec.eval.evaluator.Evaluator`.
        targets: test targets.
        every_s: training seconds between evaluations (on ``clock``).
        sample: evaluate this many test users (``None`` or ``>=`` all = every test user).
        seed: seed of the user sample.
        log: print one line per point.
    """

    def __init__(
        self,
        evaluator: Any,
        targets: Any,
        every_s: float,
        sample: int | None = None,
        seed: int = 0,
        log: bool = True,
        clock: str = "wall",
    ) -> None:
        import dataclasses

        import numpy as np

        self.evaluator = evaluator
        users = targets.users
        if sample is not None and sample < users.shape[0]:
            pick = np.sort(np.random.default_rng(seed).choice(users.shape[0], sample, replace=False))
            targets = dataclasses.replace(targets, users=users[pick])
        self.targets = targets
        self.every_s = float(every_s)
        self.next_s = 0.0
        self.log = log
        self.key = "train_cpu_s" if clock == "cpu" else "train_s"
        self.points: list[dict[str, float]] = []

    def on_epoch_model(self, epoch: int, model: Any, data: Any, logs: dict[str, float]) -> None:
        now = logs[self.key]
        if now < self.next_s:
            return
        while self.next_s <= now:
            self.next_s += self.every_s
        t0 = time.perf_counter()
        res = self.evaluator.evaluate(model, model.encode(data), self.targets)
        point = {
            "epoch": epoch,
            "train_min": logs[self.key] / 60.0,
            "train_wall_min": logs["train_s"] / 60.0,
            "train_cpu_min": logs.get("train_cpu_s", float("nan")) / 60.0,
            "loss": logs["loss"],
            "users": int(self.targets.users.shape[0]),
            "eval_s": time.perf_counter() - t0,
            **{f"test_{k}": v for k, v in res.metrics.items()},
        }
        self.points.append(point)
        logs.update({f"test_{k}": v for k, v in res.metrics.items()})
        if self.log:
            print(json.dumps(point), flush=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_fit_end(self, result: Any) -> None:
        pass


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def time_cli(
    model: str, overrides: list[str], out_dir: Path, repeat: int
) -> dict[str, Any]:
    """Time ``gnnrec run CONFIG`` end to end in fresh subprocesses; return wall/CPU per run."""
    runs: list[dict[str, Any]] = []
    for i in range(repeat):
        run_dir = out_dir / f"{model}-cli-{time.strftime('%Y%m%d-%H%M%S')}-{i}"
        cmd = [
            sys.executable,
            "-m",
            "gnnrec",
            "run",
            str(config_path(model)),
            "--out",
            str(run_dir),
            "--quiet",
        ]
        for o in overrides:
            cmd += ["--set", o]
        load = _loadavg()
        cpu0 = _cpu_seconds(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        runs.append(
            {
                "wall_s": wall,
                "cpu_s": _cpu_seconds(resource.RUSAGE_CHILDREN) - cpu0,
                "load_avg_before": load,
                "test": metrics["test"],
                "timing": metrics["timing"],
            }
        )
        print(
            f"[{model}] cli run {i + 1}/{repeat}: {wall:.1f} s wall, load {load}",
            flush=True,
        )
    rel = config_path(model).relative_to(ROOT)
    return {
        "command": f"gnnrec run {rel} --quiet"
        + "".join(f" --set {o}" for o in overrides),
        "runs": runs,
        "median_wall_s": statistics.median(r["wall_s"] for r in runs),
        "min_wall_s": min(r["wall_s"] for r in runs),
    }


def svd_sweep(
    iters: list[int], oversample: list[int], seeds: list[int], overrides: list[str]
) -> dict[str, Any]:
    """gf_cf test metrics against the randomized SVD's settings, on one prepared split.

    The exact filter (``svd: arpack``) is run first as the reference. Returns a record with
    one row per setting: metrics, SVD seconds (wall and CPU of ``prepare``).
    """
    from gnnrec.config import ModelSpec, load_config
    from gnnrec.eval.evaluator import Evaluator
    from gnnrec.models import build_model
    from gnnrec.runner import prepare_data

    cfg = load_config(config_path("gf_cf"), overrides)
    prepared = prepare_data(cfg)
    evaluator = Evaluator(cfg.eval.ks, cfg.eval.metrics, cfg.eval.batch_size)
    settings: list[dict[str, Any]] = [{"svd": "arpack"}]
    settings += [
        {"svd": "randomized", "svd_iters": n, "svd_oversample": o, "svd_seed": sd}
        for n in iters
        for o in oversample
        for sd in seeds
    ]
    rows = []
    for extra in settings:
        model = build_model(
            ModelSpec(name="gf_cf", params={**cfg.model.params, **extra}),
            prepared.data.meta,
        )
        cpu0 = time.process_time()
        model.prepare(prepared.data)
        prep_cpu = time.process_time() - cpu0
        model.eval()
        res = evaluator.evaluate(model, model.encode(prepared.data), prepared.test)
        row = {
            **extra,
            "test": res.metrics,
            "svd_s": model.timing["svd_s"],
            "prepare_cpu_s": prep_cpu,
        }
        rows.append(row)
        print(
            f"[svd sweep] {extra}: {res.metrics}, SVD {row['svd_s']:.1f} s", flush=True
        )
    return {
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017
        "config": str(config_path("gf_cf").relative_to(ROOT)),
        "overrides": overrides,
        "commit": _commit(),
        "load_avg": _loadavg(),
        "rows": rows,
    }


def _commit() -> str | None:
    from gnnrec.utils.runinfo import git_commit

    return git_commit(ROOT)


def render(records: dict[str, Any], refs: dict[str, Any]) -> str:
    """The markdown results table (ours / published / ratio) and the run records."""
    from gnnrec.reports.tables import published_rows

    sources = refs.get("sources", {})
    lines = [
        "# Gowalla: reproduction of published numbers",
        "",
        "Generated by `benchmarks/reproduce_gowalla.py` (do not edit by hand). Published numbers and",
        "citations: `benchmarks/references/gowalla.yaml`; full run records: `gowalla.json`.",
        "",
        f"Protocol: {' '.join(refs.get('protocol', '').split())}",
        "",
        "Our split: `split.mode: given` with `valid_from_train: false` (the published protocol has",
        "no validation set). Ratio = ours / published.",
        "",
        "| model | published as | source | metric | ours | published | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    runs = {k: v for k, v in records.items() if not k.startswith("_")}
    for model, ref in refs.get("models", {}).items():
        recs = [r for r in runs.values() if r["model"] == model] or [None]
        for rec in recs:
            name = model if rec is None else rec.get("label", model)
            lines += published_rows(name, ref, rec["test"] if rec else None)
    lines += ["", "## Targets", ""]
    for model, ref in refs.get("models", {}).items():
        target = ref.get("target")
        if not target:
            continue
        recs = [r for r in runs.values() if r["model"] == model]
        if not recs:
            lines.append(f"- {model}: not run yet (target {target}).")
        for rec in recs:
            got = {k: rec["test"].get(k) for k in target}
            met = all(got[k] is not None and got[k] >= v for k, v in target.items())
            text = ", ".join(
                f"{k} {_fmt(got[k])} (target ≥ {v:.4f})" for k, v in target.items()
            )
            line = f"- {rec.get('label', model)}: accuracy **{'met' if met else 'not met'}** — {text}."
            limit = ref.get("time_target_s")
            if limit is not None:
                cli = rec.get("cli")
                if cli:
                    best, med = cli["min_wall_s"], cli["median_wall_s"]
                    loads = [
                        r["load_avg_before"][0]
                        for r in cli["runs"]
                        if r["load_avg_before"]
                    ]
                    cpu = min(r["cpu_s"] for r in cli["runs"])
                    verdict = "met" if best <= limit else "not met"
                    line += (
                        f" Time **{verdict}** (target ≤ {limit} s for `{cli['command']}`): best "
                        f"{best:.1f} s wall ({cpu:.1f} s CPU), median {med:.1f} s of "
                        f"{len(cli['runs'])} run(s); 1-min load average before the runs "
                        f"{min(loads, default=float('nan')):.1f}–{max(loads, default=float('nan')):.1f} "
                        f"on {rec['machine']['cpus']} CPUs."
                    )
                else:
                    line += f" Whole command line not timed (in-process run: {rec['wall_s']:.1f} s wall)."
            lines.append(line)
        if ref.get("note") and recs:
            lines.append(f"  Note: {' '.join(ref['note'].split())}")
    lines += [
        "",
        "## Runs",
        "",
        "In-process `gnnrec.runner.run` (load, validate, split, graph, fit, full test evaluation;",
        "imports excluded) and, where timed, the whole command line in a fresh process.",
        "",
        "| model | config | overrides | commit | prepare | fit | evaluate | run wall (CPU) | CLI wall | load avg | started (UTC) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in runs.values():
        ov = " ".join(f"`{o}`" for o in rec["overrides"]) or "–"
        t = rec["timing"]
        cli = rec.get("cli")
        cli_s = (
            "–" if not cli else " / ".join(f"{r['wall_s']:.1f} s" for r in cli["runs"])
        )
        lines.append(
            f"| {rec.get('label', rec['model'])} | `{rec['config']}` | {ov} | `{rec['commit']}` | {rec['prepare_s']:.1f} s | "
            f"{t['fit_s']:.1f} s | {t['eval_s']:.1f} s | {rec['wall_s']:.1f} s ({rec['cpu_s']:.1f} s) | "
            f"{cli_s} | {rec['load_avg_before']} | {rec['started_utc']} |"
        )
    lines += ["", "All test metrics of the latest run per model:", ""]
    keys = sorted({k for rec in runs.values() for k in rec["test"]})
    lines.append("| model | " + " | ".join(keys) + " |")
    lines.append("|---" * (len(keys) + 1) + "|")
    for rec in runs.values():
        lines.append(
            f"| {rec.get('label', rec['model'])} | "
            + " | ".join(_fmt(rec["test"].get(k)) for k in keys)
            + " |"
        )
    for rec in runs.values():
        if rec.get("curve"):
            lines += _curve_section(rec)
    sweep = records.get("_svd_sweep")
    if sweep:
        lines += [
            "",
            "## gf_cf: randomized SVD settings",
            "",
            "Test metrics of `gf_cf` on the same split with the exact truncated SVD (`svd: arpack`)",
            "and the randomized one (subspace iterations / oversampling / seed); SVD = wall seconds",
            f"of the SVD in `prepare`. Commit `{sweep['commit']}`, started {sweep['started_utc']},",
            f"load average {sweep['load_avg']}.",
            "",
            "| svd | iters | oversample | seed | recall@20 | ndcg@20 | SVD wall | prepare CPU |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in sweep["rows"]:
            lines.append(
                f"| {r['svd']} | {r.get('svd_iters', '–')} | {r.get('svd_oversample', '–')} | "
                f"{r.get('svd_seed', '–')} | {_fmt(r['test'].get('recall@20'))} | "
                f"{_fmt(r['test'].get('ndcg@20'))} | {r['svd_s']:.1f} s | {r['prepare_cpu_s']:.1f} s |"
            )
    lines += ["", "Sources:", ""]
    for key, src in sources.items():
        lines.append(f"- **{key}**: {' '.join(src['cite'].split())}")
    machines = {
        f"{r['machine']['cpu']}, {r['machine']['cpus']} CPUs, torch threads {r['machine']['torch_threads']}, "
        f"{r['machine']['platform']}, Python {r['versions']['python']}, torch {r['versions']['torch']}, "
        f"numpy {r['versions']['numpy']}"
        for r in runs.values()
    }
    if machines:
        lines += ["", "Machines: " + "; ".join(sorted(machines))]
    return "\n".join(lines) + "\n"


def curve_png_path(results: Path, label: str) -> Path:
    """``<results dir>/<results stem>_<label>_curve.png`` (label made file-name safe)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)
    return results.with_name(f"{results.stem}_{safe}_curve.png")


def plot_curve(rec: dict[str, Any], target: float | None, published: float | None, path: Path) -> None:
    """Test Recall@20 against training minutes (one run's ``curve``) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = rec["curve"]
    x = [p["train_min"] for p in pts]
    y = [p["test_recall@20"] for p in pts]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(x, y, marker="o", ms=3, label=f"{rec.get('label', rec['model'])} (test, all users)")
    if published is not None:
        ax.axhline(published, color="grey", ls="--", lw=1, label=f"paper {published:.4f}")
    if target is not None:
        ax.axhline(target, color="red", ls=":", lw=1, label=f"target {target:.4f}")
    clock = rec["resolved_config"].get("train", {}).get("time_budget_clock", "wall")
    threads = rec["machine"]["torch_threads"]
    ax.set_xlabel(f"training minutes ({clock} clock, {threads} thread{'s' * (threads != 1)}; evaluation excluded)")
    ax.set_ylabel("test Recall@20")
    ax.set_title("Gowalla: time to accuracy (monitoring curve, no model selection)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _curve_section(rec: dict[str, Any]) -> list[str]:
    """Markdown of one run's time-to-accuracy curve."""
    label = rec.get("label", rec["model"])
    train = rec["resolved_config"].get("train", {})
    lines = [
        "",
        f"## {label}: time to accuracy",
        "",
        f"Test Recall@20 / NDCG@20 of all {rec['eval_users']['test']:,} test users against training minutes",
        (
            "(the training steps only, on the `train.time_budget_clock` clock; evaluation excluded), "
            f"evaluated every {rec.get('curve_every_s', 0) / 60:.0f} training minutes. The split has no "
            "validation set, so"
        ),
        "this is the **test** curve, used for monitoring only: nothing is selected on it, and the",
        "reported number is the last epoch's (the weights the run ends with).",
        (
            f"Training: {rec.get('train_cpu_min', float('nan')):.1f} CPU min / "
            f"{rec.get('train_wall_min', float('nan')):.1f} wall min (x axis: "
            f"{train.get('time_budget_clock', 'wall')} clock), {rec['epochs']} epochs, "
            f"`threads: {rec['resolved_config'].get('threads')}` (torch threads {rec['machine']['torch_threads']}) "
            f"on {rec['machine']['cpus']} shared CPUs, load average before/after "
            f"{rec['load_avg_before']} / {rec['load_avg_after']}; loss `{train.get('loss')}`, batch "
            f"{train.get('batch_size')}, lr {train.get('lr')}."
        ),
        f"Plot: `{rec['curve_png']}`." if rec.get("curve_png") else "",
        "",
        "| epoch | training min (CPU) | training min (wall) | loss | test recall@20 | test ndcg@20 |",
        "|---|---|---|---|---|---|",
    ]
    for p in rec["curve"]:
        lines.append(
            f"| {p['epoch']} | {p['train_cpu_min']:.1f} | {p['train_wall_min']:.1f} | {p['loss']:.4f} | "
            f"{_fmt(p.get('test_recall@20'))} | {_fmt(p.get('test_ndcg@20'))} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models", nargs="+", default=None, help="models to run (default: gf_cf)"
    )
    p.add_argument(
        "--all",
        action="store_true",
        help=f"run {', '.join(ALL_MODELS)} (those with a config)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override applied to every model (repeatable)",
    )
    p.add_argument(
        "--cli-repeat",
        type=int,
        default=3,
        help="end-to-end `gnnrec run` timings for models with a time target (0 = skip)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks/out/gowalla",
        help="parent of run directories",
    )
    p.add_argument(
        "--results", type=Path, default=ROOT / "benchmarks/results/gowalla.md"
    )
    p.add_argument(
        "--references", type=Path, default=ROOT / "benchmarks/references/gowalla.yaml"
    )
    p.add_argument(
        "--label",
        default=None,
        help="record name (default: the model; e.g. gf_cf[svd=arpack])",
    )
    p.add_argument(
        "--svd-sweep",
        type=int,
        nargs="+",
        default=None,
        metavar="ITERS",
        help="gf_cf only: also evaluate these randomized-SVD iteration counts (and svd: arpack)",
    )
    p.add_argument(
        "--sweep-oversample",
        type=int,
        nargs="+",
        default=[32],
        help="oversampling values of the sweep",
    )
    p.add_argument(
        "--sweep-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="sketch seeds of the sweep",
    )
    p.add_argument(
        "--curve-every-min",
        type=float,
        default=5.0,
        help="trainable models: test metrics every this many training minutes for the "
        "time-to-accuracy curve (json + PNG; 0 = off)",
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="one model: run into this directory (with --set train.resume=true: continue its checkpoint)",
    )
    p.add_argument(
        "--render-only",
        action="store_true",
        help="only re-render the table from the records",
    )
    args = p.parse_args(argv)

    refs = yaml.safe_load(args.references.read_text())
    records_path = args.results.with_suffix(".json")
    records: dict[str, Any] = (
        json.loads(records_path.read_text()) if records_path.exists() else {}
    )
    if not args.render_only:
        models = args.models or (
            []
            if args.svd_sweep and not args.all
            else list(ALL_MODELS if args.all else DEFAULT_MODELS)
        )
        for model in models:
            if not config_path(model).exists():
                print(
                    f"skip {model}: {config_path(model).relative_to(ROOT)} not found",
                    flush=True,
                )
                continue
            label = args.label if args.label and len(models) == 1 else model
            record = run_model(
                model,
                list(args.overrides),
                args.out,
                label,
                args.curve_every_min * 60 or None,
                args.run_dir if len(models) == 1 else None,
            )
            if record.get("curve"):
                ref = refs.get("models", {}).get(model, {})
                pub = next(iter(ref.get("published", [])), {}).get("metrics", {})
                png = curve_png_path(args.results, record["label"])
                plot_curve(record, ref.get("target", {}).get("recall@20"), pub.get("recall@20"), png)
                record["curve_png"] = str(png.relative_to(ROOT)) if png.is_relative_to(ROOT) else str(png)
            t = record["test"]
            print(
                f"[{model}] test recall@20 {t.get('recall@20', float('nan')):.4f} ndcg@20 "
                f"{t.get('ndcg@20', float('nan')):.4f}; {record['wall_s']:.1f} s in process",
                flush=True,
            )
            if (
                refs.get("models", {}).get(model, {}).get("time_target_s")
                and args.cli_repeat > 0
            ):
                record["cli"] = time_cli(
                    model, list(args.overrides), args.out, args.cli_repeat
                )
            records[label] = record
            args.results.parent.mkdir(parents=True, exist_ok=True)
            records_path.write_text(json.dumps(records, indent=2) + "\n")
            args.results.write_text(render(records, refs))
        if args.svd_sweep:
            records["_svd_sweep"] = svd_sweep(
                args.svd_sweep,
                args.sweep_oversample,
                args.sweep_seeds,
                list(args.overrides),
            )
            records_path.write_text(json.dumps(records, indent=2) + "\n")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(render(records, refs))
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
