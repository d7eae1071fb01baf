"""Reproduce published session-based results (SR-GNN protocol) and write the comparison table.

Runs an experiment config (default ``experiments/srgnn-diginetica.yaml``) through
:func:`gnnrec.runner.run` — loading, validation, split, training and the full-ranking test
evaluation inside the timed region — optionally under a wall-clock training budget: a
callback stops training after the epoch at which ``elapsed + last epoch > budget``, elapsed
counted from the start of training (data preparation excluded); with
``model.params.epoch_fraction: 1/k`` an epoch is the next 1/k of a shuffled pass over the
examples, so the budget is met at a finer grain. The test evaluation always runs on the
selected weights (the best validated epoch so far when the budget stops training).

``--curve-every N`` logs a learning curve: every ``N`` trainer epochs, P@20 / MRR@20 on a
fixed random subsample of the test prefixes (``--curve-users``, seed 0), computed by a
trainer monitor (``on_epoch_model``) from the scores alone (rank = 1 + number of items
scored strictly higher than the target, no masking). It is only a trajectory: it never
selects weights or stops training. Weights are selected (and training stopped, with
``train.patience``) on the config's validation split — for SR-GNN on Diginetica the last
click of 10% of the training sessions (``split.valid_carve: last``) — and the reported
numbers are the full test evaluation of the selected weights (the final ones without a
validation split).

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
        rec: dict[str, Any] = {
            "epoch": epoch,
            "seconds": round(took, 1),
            "loss": round(logs.get("loss", float("nan")), 4),
            "load_avg": _loadavg(),
        }
        if "lr" in logs:
            rec["lr"] = logs["lr"]
        rec.update({k: round(v, 2) for k, v in logs.items() if k.startswith(TestCurve.PREFIX)})
        rec.update({f"valid_{k}": round(100.0 * logs[k], 2) for k in METRICS if k in logs})
        self.epochs.append(rec)
        curve = "".join(
            f", {k[len(TestCurve.PREFIX) :]} {v:.2f}" for k, v in rec.items() if k.startswith(TestCurve.PREFIX)
        )
        valid = "".join(f", valid {k} {100.0 * logs[k]:.2f}" for k in METRICS if k in logs)
        print(
            f"epoch {epoch}: {took:.0f} s, loss {logs.get('loss', float('nan')):.4f}, "
            f"lr {logs.get('lr', float('nan')):.0e}{valid}{curve}, load {_loadavg()}",
            flush=True,
        )
        if self.budget_s is not None and (now - self.t0) + took > self.budget_s:
            raise StopTraining(f"time budget {self.budget_s:.0f} s")

    def on_fit_end(self, result: Any) -> None:
        pass


class TestCurve:
    """Trainer monitor: P@20 / MRR@20 (percent) on a fixed subsample of the test prefixes
    every ``every`` epochs, added to the epoch's logs as ``curve_hit@20`` / ``curve_mrr@20``.

    Rank of the target = 1 + the number of items scored strictly higher (no masking, as
    the session protocol); users with more than one held-out item are not supported.
    """

    PREFIX = "curve_"

    def __init__(self, targets: Any, every: int, num_users: int, k: int = 20, seed: int = 0) -> None:
        import numpy as np
        import torch

        users = np.asarray(targets.users)
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(users.shape[0], size=min(num_users, users.shape[0]), replace=False))
        rows = targets.truth[users[pick]]
        counts = np.diff(rows.indptr)
        if (counts != 1).any():
            raise SystemExit("--curve-every needs exactly one held-out item per test user")
        self.users = torch.as_tensor(users[pick], dtype=torch.long)
        self.items = torch.as_tensor(rows.indices, dtype=torch.long)
        self.every, self.k = every, k

    def on_epoch_model(self, epoch: int, model: Any, data: Any, logs: dict[str, float]) -> None:
        import torch

        if epoch % self.every:
            return
        emb = model.encode(data)
        hits = rr = 0.0
        for s in range(0, self.users.numel(), 1000):
            u, it = self.users[s : s + 1000], self.items[s : s + 1000]
            scores = model.score_all(emb, u.to(emb["item"].device)).cpu()
            rank = (scores > scores.gather(1, it.unsqueeze(1))).sum(1) + 1
            ok = rank <= self.k
            hits += float(ok.sum())
            rr += float(torch.where(ok, 1.0 / rank.double(), torch.zeros_like(rank, dtype=torch.float64)).sum())
        n = self.users.numel()
        logs[f"{self.PREFIX}hit@{self.k}"] = 100.0 * hits / n
        logs[f"{self.PREFIX}mrr@{self.k}"] = 100.0 * rr / n

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_fit_end(self, result: Any) -> None:
        pass


def run_one(
    label: str,
    ref: dict[str, Any],
    overrides: list[str],
    budget_min: float | None,
    curve_every: int = 0,
    curve_users: int = 10000,
) -> dict[str, Any]:
    import torch

    from gnnrec.config import dump_config, load_config
    from gnnrec.runner import prepare_data, run
    from gnnrec.utils.runinfo import environment_info

    path = ROOT / ref["config"]
    cfg = load_config(path, overrides)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")  # noqa: UP017
    load_before = _loadavg()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    budget = TimeBudget(None if budget_min is None else budget_min * 60)
    t0 = time.perf_counter()
    out = ROOT / "benchmarks" / "out" / "sessions" / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}"
    prepared = prepare_data(cfg)  # inside the timed region, as run() would do it
    callbacks: list[Any] = [budget]
    if curve_every > 0:
        callbacks.insert(0, TestCurve(prepared.test, curve_every, curve_users))
    budget.t0 = budget.last = time.perf_counter()  # the budget is for training
    result = run(cfg, out, progress=False, callbacks=callbacks, prepared=prepared)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    m = result.metrics
    env = environment_info()
    frac = float(cfg.model.params.get("epoch_fraction", 1.0))
    cmd = f"python benchmarks/reproduce_sessions.py --run {label}"
    cmd += "".join(f" --set {o}" for o in overrides)
    cmd += "" if budget_min is None else f" --budget-min {budget_min:g}"
    cmd += "" if curve_every <= 0 else f" --curve-every {curve_every} --curve-users {curve_users}"
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
        "curve_users": curve_users if curve_every > 0 else 0,
        "test": {k: 100.0 * m["test"][k] for k in METRICS if k in m["test"]},
        "best_epoch": m["best_epoch"],
        "stopped_early": m["stopped_early"],
        "valid": {k: 100.0 * m["valid"][k] for k in METRICS if k in m.get("valid", {})},
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
    ) + _curve_summary(rec)


def _curve_summary(rec: dict[str, Any]) -> str:
    """The test-subsample learning curve (if logged), about ten points, as one line."""
    pts = [e for e in rec["epoch_log"] if f"{TestCurve.PREFIX}hit@20" in e]
    if not pts:
        return ""
    step = max(1, len(pts) // 10)
    shown = pts[step - 1 :: step]
    if shown[-1] is not pts[-1]:
        shown.append(pts[-1])
    frac = rec["epoch_fraction"]
    body = "; ".join(
        f"{e['epoch'] * frac:g}: {e[TestCurve.PREFIX + 'hit@20']:.2f} / {e[TestCurve.PREFIX + 'mrr@20']:.2f}"
        + (f" (lr {e['lr']:.0e})" if "lr" in e else "")
        for e in shown
    )
    return (
        f"\n- learning curve on {rec.get('curve_users', '?')} fixed random test prefixes "
        f"(passes: P@20 / MRR@20; trajectory only, never used to select weights): {body}"
    )


def _selection_summary(rec: dict[str, Any]) -> str:
    """Which weights were tested: the validation-selected epoch, or the final ones."""
    valid = rec.get("valid") or {}
    if not valid:
        return "- weights tested: the final ones (no validation split)"
    frac = rec["epoch_fraction"]
    pts = [e for e in rec["epoch_log"] if "valid_mrr@20" in e]
    curve = "; ".join(
        f"{e['epoch'] * frac:g}: {e['valid_hit@20']:.2f} / {e['valid_mrr@20']:.2f}" for e in pts
    )
    return (
        f"- weights tested: epoch {rec['best_epoch']} ({rec['best_epoch'] * frac:g} passes), the best "
        f"validation {rec['resolved_config']['train']['monitor']} on {rec['eval_users']['valid']} "
        f"held-out training sessions (their last click; split.valid_carve: last); validation "
        f"P@20 / MRR@20 {valid.get('hit@20', float('nan')):.2f} / {valid.get('mrr@20', float('nan')):.2f}; "
        f"{'stopped early' if rec['stopped_early'] else 'ran to the last epoch'}"
        + (f"\n- validation curve (passes: P@20 / MRR@20): {curve}" if curve else "")
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
            _selection_summary(rec),
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
    ap.add_argument(
        "--curve-every",
        type=int,
        default=0,
        help="log P@20/MRR@20 on a fixed test subsample every N trainer epochs (0: off)",
    )
    ap.add_argument("--curve-users", type=int, default=10000, help="test prefixes in that subsample")
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
        rec = run_one(args.run, ref, args.overrides, args.budget_min, args.curve_every, args.curve_users)
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
