"""Canonical node types and relation names, defined once."""

from __future__ import annotations

USER, ITEM, CATEGORY = "user", "item", "category"
BELONGS_TO = "belongs_to"
REV_PREFIX = "rev_"


def behavior_edge(behavior: str) -> tuple[str, str, str]:
    """The user→item edge type of a behaviour, e.g. ``("user", "buy", "item")``."""
    return (USER, behavior, ITEM)


def reverse_edge(behavior: str) -> tuple[str, str, str]:
    """The item→user reverse edge type, e.g. ``("item", "rev_buy", "user")``."""
    return (ITEM, REV_PREFIX + behavior, USER)


ITEM_CATEGORY = (ITEM, BELONGS_TO, CATEGORY)
CATEGORY_ITEM = (CATEGORY, REV_PREFIX + BELONGS_TO, ITEM)
