"""Counts describing a log or an interaction table (``gnnrec data validate`` prints them)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np

from gnnrec.data.types import InteractionTable, ValidLog


def summarize(table_or_log: InteractionTable | ValidLog) -> dict[str, Any]:
    """Summary counts of a validated log or an interaction table.

    Returns:
        ``rows``, ``users``, ``items``, ``categories`` (``None`` without a category column),
        ``behaviors`` (events per vocabulary behaviour, funnel order, zeros included),
        ``time_range`` (first and last event as ISO-8601 UTC strings, ``None`` without
        timestamps), ``target_behavior``, ``dropped`` (rows removed by reason) and, for a
        log, ``source``.
    """
    if isinstance(table_or_log, InteractionTable):
        t = table_or_log
        counts = np.bincount(t.behavior.astype(np.int64), minlength=len(t.behaviors))
        has_cat = t.num_categories > 0 or bool((t.item_category >= 0).any())
        ts = t.ts
        return {
            "rows": len(t),
            "users": t.num_users,
            "items": t.num_items,
            "categories": t.num_categories if has_cat else None,
            "behaviors": {b: int(counts[k]) for k, b in enumerate(t.behaviors)},
            "time_range": _time_range(int(ts.min()), int(ts.max())) if ts is not None and ts.size else None,
            "target_behavior": t.target_behavior,
            "dropped": dict(t.dropped),
        }
    if isinstance(table_or_log, ValidLog):
        log = table_or_log
        f = log.frame
        per = dict(f["behavior"].value_counts().iter_rows()) if f.height else {}
        time_range = None
        if "timestamp" in f.columns and f.height:
            time_range = _time_range(int(f["timestamp"].min()), int(f["timestamp"].max()))  # type: ignore[arg-type]
        return {
            "source": log.source,
            "rows": f.height,
            "users": f["user"].n_unique(),
            "items": f["item"].n_unique(),
            "categories": f["category"].n_unique() if "category" in f.columns else None,
            "behaviors": {b: int(per.get(b, 0)) for b in log.behaviors},
            "time_range": time_range,
            "target_behavior": log.target_behavior,
            "dropped": dict(log.dropped),
        }
    raise TypeError(f"summarize expects an InteractionTable or a ValidLog, got {type(table_or_log).__name__}")


def format_summary(d: dict[str, Any]) -> str:
    """A readable multi-line text block of :func:`summarize`'s output."""
    lines = []
    if d.get("source"):
        lines.append(("source", str(d["source"])))
    for key in ("rows", "users", "items", "categories"):
        if key in d:
            value = d[key]
            lines.append((key, "-" if value is None else f"{value:,}"))
    behaviors = d.get("behaviors") or {}
    if behaviors:
        lines.append(("behaviors", ", ".join(f"{b} {n:,}" for b, n in behaviors.items())))
    if "time_range" in d:
        tr = d["time_range"]
        lines.append(("time range", "-" if tr is None else f"{tr[0]} .. {tr[1]}"))
    if d.get("target_behavior") is not None:
        lines.append(("target", str(d["target_behavior"])))
    if "dropped" in d:
        dropped = d["dropped"] or {}
        lines.append(("dropped", ", ".join(f"{k} {v:,}" for k, v in dropped.items()) or "none"))
    width = max(len(k) for k, _ in lines) if lines else 0
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_range(lo: int, hi: int) -> tuple[str, str]:
    return _iso(lo), _iso(hi)
