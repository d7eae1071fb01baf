"""Every shipped experiment config validates (no stale keys), model params included."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnnrec.config import load_config, validate_section
from gnnrec.models import MODELS

EXPERIMENTS = sorted((Path(__file__).resolve().parent.parent / "experiments").glob("*.yaml"))


def test_there_are_configs() -> None:
    names = {p.stem for p in EXPERIMENTS}
    assert "quickstart" in names
    for model in ("pop", "itemknn", "mf_bpr", "neumf"):
        for dataset in ("synthetic", "ml-100k", "taobao", "tmall-mb"):
            assert f"{model}-{dataset}" in names


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_config_validates(path: Path) -> None:
    import gnnrec.models  # noqa: F401
    from gnnrec.data.datasets import DATASETS

    cfg = load_config(path)
    assert cfg.data.dataset in DATASETS
    for spec in (cfg.model, *cfg.compare):
        validate_section(MODELS.meta(spec.name)["config"], spec.params, "model.params")
    if path.stem != "quickstart":
        model, _, dataset = path.stem.partition("-")
        assert cfg.model.name == model
        assert cfg.data.dataset == dataset
