"""Reproduce published session-based results (SR-GNN protocol) and write the comparison table.

Runs an experiment config (default ``experiments/srgnn-diginetica.yaml``) through
:func:`gnnrec.runner.run` — loading, validation, split, training and the full-ranking test
evaluation inside the timed region — optionally under a wall-clock training budget: a
callback stops training after the epoch at which ``elapsed + last epoch > budget`` (with
``model.params.epoch_fraction < 1`` an epoch is a random share of the examples, so the budget
is met at a finer grain). The test evaluation always runs on the weights reached.

Records accumulate in ``benchmarks/results/sessions.json`` (a rerun of one label replaces
its record); ``benchmarks/results/sessions.md`` is rendered from them with the published
numbers and citations of ``benchmarks/references/sessions.yaml``: ours, published, ratio,
whether the target (ratio >= 0.97 on both metrics) is met, epochs and examples trained, wall
time, commit, machine and load average.

Usage (repository root, ``TMPDIR=$PWD/.tmp GNNREC_DATA=/path/to/data OMP_NUM_THREADS=1``)::

    nice -n 10 python benchmarks/reproduce_sessions.py --budget-min 50
    python benchmarks/reproduce_sessions.py --run srgnn-tmall-session --budget-min 20
    python benchmarks/reproduce_sessions.py --render-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
REFS = ROOT / "benchmarks" / "references" / "sessions.yaml"
RESULTS = ROOT / "benchmarks" / "results"
METRICS = ("hit@20", "mrr@20")
NAMES = {"hit@20": "P@20", "mrr@20": "MRR@20"}


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class TimeBudget:
    """Trainer callback: stop when another epoch like the last would exceed the budget."""

    def __init__(self, budget_s: float | None) -> None:
        self.budget_s = budget_s
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.epochs: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        from gnnrec.train.callbacks import StopTraining

        now = time.perf_counter()
        took, self.last = now - self.last, now
        self.epochs.append(
            {
                "epoch": epoch,
                "seconds": round(took, 1),
                "loss": round(logs.get("loss", float("nan")), 4),
                "load_avg": _loadavg(),
            }
        )
        print(
            f"epoch {epoch}: {took:.0f} s, loss {logs.get('loss', float('nan')):.4f}, load {_loadavg()}",
            flush=True,
        )
        if self.budget_s is not None and (now - self.t0) + took > self.budget_s:
            raise StopTraining(f"time budget {self.budget_s:.0f} s")

    def on_fit_end(self, result: Any) -> None:
        pass


def run_one(
    label: str, ref: dict[str, Any], overrides: list[str], budget_min: float | None
) -> dict[str, Any]:
    import torch

    from gnnrec.config import dump_config, load_config
    from gnnrec.runner import run
    from gnnrec.utils.runinfo import environment_info

    path = ROOT / ref["config"]
    cfg = load_config(path, overrides)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017
    load_before = _loadavg()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    budget = TimeBudget(None if budget_min is None else budget_min * 60)
    t0 = time.perf_counter()
    out = ROOT / "benchmarks" / "out" / "sessions" / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = run(cfg, out, progress=False, callbacks=[budget])
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    m = result.metrics
    env = environment_info()
    frac = float(cfg.model.params.get("epoch_fraction", 1.0))
    cmd = f"python benchmarks/reproduce_sessions.py --run {label}"
    cmd += "".join(f" --set {o}" for o in overrides)
    cmd += "" if budget_min is None else f" --budget-min {budget_min:g}"
    return {
        "label": label,
        "config": ref["config"],
        "overrides": overrides,
        "command": cmd,
        "resolved_config": yaml.safe_load(dump_config(cfg)),
        "commit": env.get("commit"),
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "device": m["device"],
        },
        "started_utc": started,
        "load_avg_before": load_before,
        "load_avg_after": _loadavg(),
        "budget_min": budget_min,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
        "timing": m["timing"],
        "epochs": m["epochs"],
        "epoch_fraction": frac,
        "full_epochs_equivalent": round(m["epochs"] * frac, 3),
        "epoch_log": budget.epochs,
        "test": {k: 100.0 * m["test"][k] for k in METRICS if k in m["test"]},
        "eval_users": m["eval_users"],
        "data": m["data"],
        "dropped": m.get("dropped_rows", {}),
        "run_dir": str(result.run_dir.relative_to(ROOT)),
    }


def _epoch_summary(rec: dict[str, Any]) -> str:
    """One line about the epochs (full log in the JSON): count, median time, loss trend."""
    log = rec["epoch_log"]
    if not log:
        return "- no epoch log"
    secs = sorted(e["seconds"] for e in log)
    med = secs[len(secs) // 2]
    return (
        f"- {len(log)} epochs of {rec['epoch_fraction']} of the examples, median {med:.0f} s each "
        f"(≈ {med / rec['epoch_fraction'] / 60:.0f} min per full pass at that load); training loss "
        f"{log[0]['loss']} → {log[-1]['loss']} (per-epoch log in sessions.json)"
    )


def render(records: dict[str, Any], refs: dict[str, Any]) -> str:
    lines = [
        "# Session-based recommendation: reproduction of published results",
        "",
        "Generated by `benchmarks/reproduce_sessions.py` (do not edit by hand). Protocol: "
        + refs["protocol"].strip(),
        "",
        (
            "Metrics in percent. hit@20 here is the papers' P@20 (one target per test prefix). "
            "Ratio = ours / published; target: ratio >= 0.97 on both metrics."
        ),
        "",
        "| run | compared to | metric | ours | published | ratio | target met |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, ref in refs["runs"].items():
        rec = records.get(label)
        for pub in ref["published"]:
            for k in METRICS:
                p = pub["metrics"][k]
                ours = None if rec is None else rec["test"].get(k)
                ratio = None if ours is None else ours / p
                tgt = ref.get("target_ratio")
                met = "–" if tgt is None or ratio is None else ("yes" if ratio >= tgt else "**no**")
                lines.append(
                    f"| {label} | {ref['compare_to']} ({pub['source']}) | {NAMES[k]} | "
                    f"{'not run' if ours is None else f'{ours:.2f}'} | {p:.2f} | "
                    f"{'–' if ratio is None else f'{ratio:.3f}'} | {met} |"
                )
    lines += ["", "## Runs", ""]
    for label, rec in records.items():
        lines += [
            f"### {label}",
            "",
            f"- command: `{rec['command']}` (config `{rec['config']}`)",
            (
                f"- commit {rec['commit']}, started {rec['started_utc']}, machine {rec['machine']['cpu']} "
                f"({rec['machine']['cpus']} CPUs, torch threads {rec['machine']['torch_threads']}, {rec['machine']['device']})"
            ),
            (
                f"- load average before {rec['load_avg_before']}, after {rec['load_avg_after']} (shared machine: "
                "timings are upper bounds)"
            ),
            (
                f"- wall {rec['wall_s']:.0f} s, CPU {rec['cpu_s']:.0f} s; training budget "
                f"{rec['budget_min']} min; epochs run {rec['epochs']} x fraction {rec['epoch_fraction']} = "
                f"{rec['full_epochs_equivalent']} passes over the training examples"
            ),
            _epoch_summary(rec),
            f"- test users (prefixes): {rec['eval_users']['test']}; dropped rows: {rec['dropped'] or 'none'}",
            *([f"- note: {rec['note']}"] if rec.get("note") else []),
            "",
        ]
        for old in rec.get("history", []):
            lines.append(
                f"- earlier run ({old['started_utc']}, `{old['command']}`): "
                + ", ".join(f"{NAMES[k]} {v:.2f}" for k, v in old["test"].items())
                + f" after {old['full_epochs_equivalent']} passes, wall {old['wall_s']:.0f} s, "
                f"load {old['load_avg_before']} → {old['load_avg_after']}"
            )
        if rec.get("history"):
            lines.append("")
    for key, src in refs["sources"].items():
        lines.append(f"- **{key}**: {' '.join(src['cite'].split())}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--run",
        default="srgnn-diginetica",
        help="run label in references/sessions.yaml",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        help="config override key=value",
    )
    ap.add_argument(
        "--budget-min",
        type=float,
        default=None,
        help="training wall-clock budget in minutes",
    )
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument(
        "--note", default=None, help="a remark stored with the run's record (e.g. why a target was missed)"
    )
    args = ap.parse_args(argv)
    refs = yaml.safe_load(REFS.read_text())
    RESULTS.mkdir(parents=True, exist_ok=True)
    jpath = RESULTS / "sessions.json"
    records: dict[str, Any] = json.loads(jpath.read_text()) if jpath.is_file() else {}
    if not args.render_only:
        ref = refs["runs"][args.run]
        if ref.get("config") is None:
            print(f"{args.run}: no config (reference row only)", file=sys.stderr)
            return 2
        rec = run_one(args.run, ref, args.overrides, args.budget_min)
        if args.run in records:  # earlier runs of the label stay in the record's history
            old = records[args.run]
            rec["history"] = [*old.pop("history", []), old]
        records[args.run] = rec
        jpath.write_text(json.dumps(records, indent=2) + "\n")
        print(json.dumps(records[args.run]["test"]), flush=True)
    if args.note is not None and args.run in records:
        records[args.run]["note"] = args.note
        jpath.write_text(json.dumps(records, indent=2) + "\n")
    (RESULTS / "sessions.md").write_text(render(records, refs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
