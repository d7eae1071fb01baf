"""``gnnrec drift CONFIG.yaml``: interest-drift analysis of the configured data.

Runs only the data pipeline (load → validate → interaction table → split), then

* **change-point detection on all rows** (every behaviour listed in ``drift.behaviors``,
  whatever the split says: the analysis describes the log, it trains nothing, so there is
  no label to leak), scored against the planted ground truth when the dataset has one
  (``synthetic``, or a ``file`` log with its ``.ground_truth.parquet``);
* **the drift score on TRAIN rows only**, as used by the evaluation buckets of
  ``metrics.json``: how many users each drift bucket would hold.

Writes ``drift.json`` (and ``per_user_drift.parquet``, one row per user with events) to
``--out`` (a folder; default ``<out_dir>/<name>-drift-<timestamp>``) and prints a summary.
``drift.json`` holds ``config`` (the ``drift:`` settings), ``dataset``, ``seed``,
``summary`` (counts, windows, detector settings), ``train_buckets``, ``detections`` (the
first 20 detected users) and, with ground truth, ``precision``, ``recall``, ``f1`` and
``tolerance`` (seconds) at the top level plus the full ``evaluation`` counts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: detected users listed in drift.json (the full list is in per_user_drift.parquet)
PREVIEW = 20


def register(sub: Any) -> None:
    """Add the ``drift`` sub-command."""
    p = sub.add_parser(
        "drift",
        help="detect interest migration (change points) in the configured data",
        description="Per-user category distributions per window, a Jensen-Shannon drift score and "
        "change-point detection (settings: the config's `drift:` section). With planted ground truth "
        "(synthetic data) it reports precision/recall/F1 of the detected change points. Writes "
        "drift.json and per_user_drift.parquet.",
    )
    p.add_argument("config", help="experiment YAML (e.g. experiments/drift-synthetic.yaml)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. drift.threshold=0.4",
    )
    p.add_argument("--out", help="output folder (default: <out_dir>/<name>-drift-<timestamp>)")
    p.set_defaults(func=cmd_drift)


def cmd_drift(args: argparse.Namespace) -> int:
    """Handler of ``gnnrec drift``."""
    from rich.table import Table

    from gnnrec.cli import _console
    from gnnrec.config import load_config
    from gnnrec.data.datasets import load_dataset
    from gnnrec.data.interactions import build_interactions
    from gnnrec.data.schema import validate_log
    from gnnrec.data.splits import make_split
    from gnnrec.data.types import TRAIN
    from gnnrec.drift.analysis import analyze_table, user_windows
    from gnnrec.drift.score import drift_scores
    from gnnrec.eval.buckets import DRIFT_LABELS, drift_labels
    from gnnrec.utils.rundir import make_run_dir

    cfg = load_config(args.config, list(args.set or []))
    raw = load_dataset(cfg.data, seed=cfg.seed)
    table = build_interactions(validate_log(raw, cfg.data), cfg.data)
    report = analyze_table(table, cfg.drift, seed=cfg.seed)

    split = make_split(table, cfg.split, cfg.seed)
    train_counts = user_windows(table, cfg.drift, split.assign == TRAIN)
    labels = drift_labels(drift_scores(train_counts, cfg.drift.recent_share, cfg.drift.min_events), cfg.drift)
    active = labels[train_counts.events.sum(axis=1) > 0]
    train_buckets: dict[str, Any] = {name: int((active == name).sum()) for name in DRIFT_LABELS}
    train_buckets.update(threshold=cfg.drift.bucket_threshold, alpha=cfg.drift.alpha)

    out_dir = Path(args.out) if args.out else make_run_dir(cfg.out_dir, f"{cfg.name}-drift")
    out_dir.mkdir(parents=True, exist_ok=True)
    detected = report.per_user.filter(report.per_user["detected"])
    doc: dict[str, Any] = {
        "config": cfg.drift.model_dump(mode="json"),
        "dataset": cfg.data.dataset,
        "seed": cfg.seed,
        "rows": {"detection": "all", "drift_score": "train"},
    }
    evaluation = report.summary.get("evaluation")
    if evaluation is not None:
        doc.update({k: evaluation[k] for k in ("precision", "recall", "f1", "tolerance")})
    doc["summary"] = report.summary
    doc["train_buckets"] = train_buckets
    doc["detections"] = (
        detected.head(PREVIEW).select("user_id", "change_ts", "js", "p_value", "before", "after").to_dicts()
    )
    (out_dir / "drift.json").write_text(json.dumps(doc, indent=2))
    report.per_user.write_parquet(out_dir / "per_user_drift.parquet")

    console = _console()
    t = Table(title=f"interest drift: {cfg.data.dataset} ({report.summary['users_with_events']} users)")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("windows", f"{report.counts.mode}, {report.counts.num_windows}")
    t.add_row("events counted", str(report.summary["events"]))
    mean = report.summary["drift_score_mean"]
    t.add_row("mean drift score (bits)", "-" if mean is None else f"{mean:.3f}")
    t.add_row("change points detected", str(report.summary["detected"]))
    t.add_row(
        "train buckets stable / migrating / unknown",
        f"{train_buckets['stable']} / {train_buckets['migrating']} / {train_buckets['unknown']}",
    )
    if evaluation is not None:
        t.add_row("true changes (ground truth)", str(evaluation["true_changes"]))
        t.add_row(f"precision (tolerance {evaluation['tolerance']} s)", f"{evaluation['precision']:.4f}")
        t.add_row("recall", f"{evaluation['recall']:.4f}")
        t.add_row("f1", f"{evaluation['f1']:.4f}")
    console.print(t)
    console.print(f"drift.json: {out_dir / 'drift.json'}")
    return 0
