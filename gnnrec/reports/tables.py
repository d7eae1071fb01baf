"""Readable result tables (rich for the terminal, Markdown/CSV for files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table


def _split_key(key: str) -> tuple[str, int]:
    name, _, k = key.partition("@")
    return name, int(k) if k.isdigit() else 0


def metrics_table(metrics: Mapping[str, Any], title: str = "test metrics") -> Table:
    """One run's test metrics: a row per metric name, a column per K."""
    test: Mapping[str, float] = metrics.get("test", {})
    names = sorted({_split_key(k)[0] for k in test})
    ks = sorted({_split_key(k)[1] for k in test})
    table = Table(title=title)
    table.add_column("metric")
    for k in ks:
        table.add_column(f"@{k}", justify="right")
    for n in names:
        table.add_row(n, *[f"{test.get(f'{n}@{k}', float('nan')):.4f}" for k in ks])
    return table


def comparison_rows(results: Mapping[str, Mapping[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Flatten per-model metrics.json dicts into table rows."""
    rows = []
    for name, m in results.items():
        row: dict[str, Any] = {"model": name}
        for k in keys:
            row[k] = m["test"].get(k, float("nan"))
        row["best_epoch"] = m.get("best_epoch")
        row["epoch_s"] = m["timing"].get("epoch_s")
        row["fit_s"] = m["timing"].get("fit_s")
        row["eval_s"] = m["timing"].get("eval_s")
        rows.append(row)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return "" if v is None else str(v)


def comparison_table(rows: Sequence[Mapping[str, Any]], title: str = "model comparison (test)") -> Table:
    table = Table(title=title)
    if not rows:
        return table
    cols = list(rows[0].keys())
    for c in cols:
        table.add_column(c, justify="left" if c == "model" else "right")
    best = {c: max((r[c] for r in rows if isinstance(r[c], float)), default=None) for c in cols if "@" in c}
    for r in rows:
        cells = []
        for c in cols:
            text = _fmt(r[c])
            if c in best and r[c] == best[c]:
                text = f"[bold]{text}[/bold]"
            cells.append(text)
        table.add_row(*cells)
    return table


def to_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def published_rows(
    label: str,
    ref: Mapping[str, Any],
    test: Mapping[str, float] | None,
    metric_name: Any = str,
    ratio_digits: int = 3,
) -> list[str]:
    """Markdown rows ``| label | compared to | source | metric | ours | published | ratio |``
    of a reproduction table: one per published metric of ``ref`` (``compare_to`` and
    ``published: [{source, metrics}]``, as the ``benchmarks/references/*.yaml`` entries).

    ``test`` is our run's test metrics (None: not run, shown as ``–``); ``metric_name``
    formats the metric key; ratio = ours / published.
    """
    rows = []
    for pub in ref.get("published", []):
        for metric, value in pub["metrics"].items():
            ours = None if test is None else test.get(metric)
            ratio = "–" if ours is None else f"{ours / value:.{ratio_digits}f}"
            rows.append(
                f"| {label} | {ref['compare_to']} | {pub['source']} | {metric_name(metric)} | "
                f"{'–' if ours is None else f'{ours:.4f}'} | {value:.4f} | {ratio} |"
            )
    return rows
