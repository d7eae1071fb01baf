"""Locating the real datasets for tests marked ``realdata``.

They read ``$GNNREC_DATA`` (the Makefile and .ci/run point it at ../shared/data). When the
directory or a dataset folder is missing the tests skip — unless ``GNNREC_REQUIRE_DATA=1``
(set by .ci/run), where a missing folder fails the suite so CI cannot go green by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def data_root() -> Path:
    root = os.environ.get("GNNREC_DATA")
    required = os.environ.get("GNNREC_REQUIRE_DATA") == "1"
    if not root or not Path(root).is_dir():
        msg = f"real data directory not found (GNNREC_DATA={root!r})"
        if required:
            pytest.fail(msg + " but GNNREC_REQUIRE_DATA=1")
        pytest.skip(msg)
    return Path(root)


def dataset_dir(folder: str) -> Path:
    path = data_root() / folder
    if not path.is_dir():
        msg = f"dataset folder missing: {path}"
        if os.environ.get("GNNREC_REQUIRE_DATA") == "1":
            pytest.fail(msg + " but GNNREC_REQUIRE_DATA=1")
        pytest.skip(msg)
    return path
