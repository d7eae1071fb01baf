"""From finished cells to table rows: mean ± std over seeds, timings, memory, references.

Everything here reads the cells' ``metrics.json`` files, so a report can be regenerated
from an output directory at any time and does not depend on which invocation ran a cell.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gnnrec.bench.execute import read_cell
from gnnrec.bench.suite import Suite

#: Per-cell timing / memory fields (name in cells.csv -> how to read it from metrics.json).
CELL_FIELDS: tuple[str, ...] = (
    "epochs",
    "best_epoch",
    "fit_s",
    "epoch_s",
    "eval_s",
    "wall_s",
    "prepare_s",
    "peak_rss_mb",
    "delta_rss_mb",
)


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n − 1); std is None for fewer than 2 values."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None)


def cell_record(suite: Suite, cell_index: int, out: str | Path) -> dict[str, Any]:
    """One flat row of ``cells.csv``: the cell's key, status, test metrics and timings."""
    cell = suite.cells[cell_index]
    m = read_cell(cell, out, suite.metrics)
    run_dir = cell.run_dir(out)
    rec: dict[str, Any] = {"dataset": cell.dataset, "model": cell.model, "seed": cell.seed}
    if m is None:
        rec["status"] = "failed" if (run_dir / "error.txt").exists() else "missing"
        return rec
    b, t = m["bench"], m["timing"]
    rec["status"] = "finished"
    for k in suite.metrics:
        rec[k] = m["test"][k]
    for k in sorted(m["test"]):
        if k not in suite.metrics:
            rec[k] = m["test"][k]
    rec.update(
        {
            "epochs": m.get("epochs"),
            "best_epoch": m.get("best_epoch"),
            "fit_s": t.get("fit_s"),
            "epoch_s": t.get("epoch_s"),
            "eval_s": t.get("eval_s"),
            "wall_s": b.get("wall_s"),
            "prepare_s": b.get("prepare_s"),
            "peak_rss_mb": b.get("peak_rss_mb"),
            "delta_rss_mb": b.get("delta_rss_mb"),
            "memory_method": b.get("method"),
            "load_avg_1m": (b.get("load_avg_before") or [None])[0],
            "finished_utc": b.get("finished_utc"),
            "run_dir": str(run_dir),
        }
    )
    return rec


def cell_records(suite: Suite, out: str | Path) -> list[dict[str, Any]]:
    """:func:`cell_record` for every cell, in suite order."""
    return [cell_record(suite, i, out) for i in range(len(suite.cells))]


@dataclass(frozen=True)
class Reference:
    """A published number matched to one of our (dataset, model, metric) cells."""

    value: float
    source: str  # key into the reference file's `sources`
    compare_to: str  # the published model name


def find_reference(
    refs: Mapping[str, Any], ref_model: str, metric: str, source: str | None = None, scale: float = 1.0
) -> Reference | None:
    """The published ``metric`` of ``ref_model`` in a reference file (format of
    ``benchmarks/references/*.yaml``): from ``source`` if given, else from the first
    ``published`` entry that lists the metric; multiplied by ``scale`` (0.01 turns a
    percentage into our fractions)."""
    entry = refs.get("models", {}).get(ref_model)
    if not isinstance(entry, Mapping):
        return None
    for pub in entry.get("published", []) or []:
        if source is not None and pub.get("source") != source:
            continue
        value = (pub.get("metrics") or {}).get(metric)
        if value is not None:
            return Reference(float(value) * scale, str(pub.get("source")), str(entry.get("compare_to", ref_model)))
    return None


def aggregate(suite: Suite, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, model) in suite order.

    Keys: ``dataset``, ``model``, ``seeds`` (finished cells), ``missing`` (cells not
    finished), ``<metric>_mean`` / ``_std`` for each suite metric, ``fit_s_mean`` /
    ``fit_s_std``, ``epoch_s_mean``, ``epochs_mean``, ``wall_s_mean``, ``peak_rss_mb_max``,
    ``delta_rss_mb_max`` and, where the dataset has a reference for the model,
    ``<metric>_published`` / ``<metric>_ratio`` (ours mean / published), ``reference``
    (published model name), ``<metric>_source`` and ``reference_source`` (the sources used,
    comma-separated).
    """
    rows: list[dict[str, Any]] = []
    for ds in suite.datasets:
        refs = suite.references.get(ds)
        spec = suite.reference_specs.get(ds)
        for model in suite.models:
            recs = [r for r in records if r["dataset"] == ds and r["model"] == model]
            done = [r for r in recs if r["status"] == "finished"]
            row: dict[str, Any] = {"dataset": ds, "model": model, "seeds": len(done), "missing": len(recs) - len(done)}
            for k in suite.metrics:
                row[f"{k}_mean"], row[f"{k}_std"] = mean_std([r[k] for r in done])
            row["fit_s_mean"], row["fit_s_std"] = mean_std([r["fit_s"] for r in done])
            row["epoch_s_mean"], _ = mean_std([r["epoch_s"] for r in done])
            row["epochs_mean"], _ = mean_std([r["epochs"] for r in done])
            row["wall_s_mean"], _ = mean_std([r["wall_s"] for r in done])
            peaks = [r["peak_rss_mb"] for r in done if r.get("peak_rss_mb") is not None]
            deltas = [r["delta_rss_mb"] for r in done if r.get("delta_rss_mb") is not None]
            row["peak_rss_mb_max"] = max(peaks) if peaks else None
            row["delta_rss_mb_max"] = max(deltas) if deltas else None
            if refs is not None and spec is not None:
                ref_model = spec.models.get(model, model if model in refs.get("models", {}) else None)
                row["reference"] = None
                sources: list[str] = []
                for k in suite.metrics:
                    ref = find_reference(refs, ref_model, k, spec.source, spec.scale) if ref_model else None
                    mean = row[f"{k}_mean"]
                    row[f"{k}_published"] = ref.value if ref else None
                    row[f"{k}_ratio"] = mean / ref.value if ref and mean is not None and ref.value else None
                    row[f"{k}_source"] = ref.source if ref else None
                    if ref:
                        row["reference"] = ref.compare_to
                        sources += [ref.source] if ref.source not in sources else []
                row["reference_source"] = ", ".join(sources) or None
            rows.append(row)
    return rows
