"""``gnnrec interests RUN_DIR --user ID``: a user's interest tags from a finished run.

Prints the user's top categories by the trained model's interest weight, each with its
trend (rising / stable / fading / unknown) from the user's recent vs earlier training
behaviour; see :mod:`gnnrec.drift.tags` for the definitions and thresholds. ``--json``
prints the rows as JSON instead of a table. An id not in the run's ``vocab/users.csv`` is
an error (one ``error:`` line naming the id, exit status 2).
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    """Add the ``interests`` sub-command."""
    p = sub.add_parser(
        "interests",
        help="a user's top categories with weights and trend, from a finished run",
        description="Interest tags of one user: the trained model's category interest weights "
        "(top N) and, per category, the trend of the user's training behaviour (rising / stable / "
        "fading: recent vs earlier share of the user's events, +-0.10).",
    )
    p.add_argument("run_dir", help="a run directory written by `gnnrec run`")
    p.add_argument("--user", required=True, metavar="ID", help="user id as in RUN_DIR/vocab/users.csv")
    p.add_argument("--top", type=int, default=5, metavar="N", help="categories to show (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.set_defaults(func=cmd_interests)


def cmd_interests(args: argparse.Namespace) -> int:
    """Handler of ``gnnrec interests``."""
    from pathlib import Path

    from rich.table import Table

    from gnnrec.cli import _console
    from gnnrec.drift.tags import interest_tags
    from gnnrec.errors import ConfigError, GnnrecError

    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}")
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise GnnrecError(f"{run_dir}: run directory not found")
    tags = interest_tags(run_dir, args.user, args.top)
    if args.json:
        print(json.dumps(tags.to_dicts(), indent=2))
        return 0
    t = Table(title=f"interests of user {args.user} ({run_dir.name})")
    named = "name" in tags.columns
    for col in (
        "rank",
        "category",
        *(("name",) if named else ()),
        "weight",
        "trend",
        "recent share",
        "earlier share",
    ):
        t.add_column(
            col, justify="right" if col in ("rank", "weight", "recent share", "earlier share") else "left"
        )
    for row in tags.iter_rows(named=True):  # at most --top rows
        cells = [str(row["rank"]), row["category_id"]]
        if named:
            cells.append(str(row["name"] or ""))
        cells += [
            f"{row['weight']:.4f}",
            row["trend"],
            f"{row['recent_share']:.2f}",
            f"{row['earlier_share']:.2f}",
        ]
        t.add_row(*cells)
    _console().print(t)
    return 0
