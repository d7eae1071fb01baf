"""Every shipped experiment config validates (no stale keys), model params included, and the
experiment matrix (every model x the five main datasets) is complete: each pair has a config
file or a reasoned entry in experiments/UNSUPPORTED.yaml, never both."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gnnrec.config import load_config, validate_section
from gnnrec.models import MODELS

EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
#: the table of (model, dataset) pairs without a config; not an experiment config itself
UNSUPPORTED = EXPERIMENTS_DIR / "UNSUPPORTED.yaml"
EXPERIMENTS = sorted(p for p in EXPERIMENTS_DIR.glob("*.yaml") if p != UNSUPPORTED)
#: datasets of the experiment matrix (registry names; the issue's five)
MATRIX_DATASETS = ("synthetic", "ml-100k", "taobao", "tmall-mb", "gowalla")


def test_there_are_configs() -> None:
    names = {p.stem for p in EXPERIMENTS}
    assert "quickstart" in names
    for model in ("pop", "itemknn", "mf_bpr", "neumf"):
        for dataset in ("synthetic", "ml-100k", "taobao", "tmall-mb"):
            assert f"{model}-{dataset}" in names


#: configs named after a task, not a model (the issues name these files)
TASK_CONFIGS = {"quickstart", "drift-synthetic", "replay-synthetic"}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_config_validates(path: Path) -> None:
    import gnnrec.models  # noqa: F401
    from gnnrec.data.datasets import DATASETS

    cfg = load_config(path)
    assert cfg.data.dataset in DATASETS
    for spec in (cfg.model, *cfg.compare):
        validate_section(MODELS.meta(spec.name)["config"], spec.params, "model.params")
    if path.stem in TASK_CONFIGS:
        return
    # <model>-<dataset>[-<variant>].yaml, with registry names
    model = cfg.model.name
    assert path.stem.startswith(f"{model}-"), f"{path.name}: file name must start with the model '{model}'"
    rest = path.stem[len(model) + 1 :]
    assert rest == cfg.data.dataset or rest.startswith(f"{cfg.data.dataset}-"), (
        f"{path.name}: expected '{model}-{cfg.data.dataset}[-variant].yaml'"
    )


def _unsupported() -> dict[str, str]:
    table = yaml.safe_load(UNSUPPORTED.read_text(encoding="utf-8"))
    assert isinstance(table, dict), "experiments/UNSUPPORTED.yaml must be a mapping <model>-<dataset>: reason"
    return table


def _split_pair(key: str) -> tuple[str, str] | None:
    """``<model>-<dataset>`` with registered names, or None."""
    from gnnrec.data.datasets import DATASETS

    for model in MODELS.names():
        if key.startswith(f"{model}-") and key[len(model) + 1 :] in DATASETS:
            return model, key[len(model) + 1 :]
    return None


def test_unsupported_names_registered_pairs_with_reasons() -> None:
    import gnnrec.models  # noqa: F401

    table = _unsupported()
    assert table, "experiments/UNSUPPORTED.yaml is empty"
    for key, reason in table.items():
        assert _split_pair(str(key)) is not None, (
            f"UNSUPPORTED.yaml: '{key}' is not <registered model>-<registered dataset>"
        )
        assert isinstance(reason, str) and len(reason.split()) >= 5, f"UNSUPPORTED.yaml: '{key}' needs a reason"


def test_split_pair_rejects_unknown_names() -> None:
    import gnnrec.models  # noqa: F401

    assert _split_pair("pop_category-tmall-mb") == ("pop_category", "tmall-mb")
    assert _split_pair("pop-ml-100k") == ("pop", "ml-100k")
    assert _split_pair("nomodel-gowalla") is None
    assert _split_pair("pop-nodataset") is None


@pytest.mark.parametrize("dataset", MATRIX_DATASETS)
def test_matrix_has_config_or_reason(dataset: str) -> None:
    """Every registered model on ``dataset``: exactly one of experiments/<model>-<dataset>.yaml
    and an UNSUPPORTED.yaml entry."""
    import gnnrec.models  # noqa: F401
    from gnnrec.data.datasets import DATASETS

    assert dataset in DATASETS
    table = _unsupported()
    missing, both = [], []
    for model in MODELS.names():
        key = f"{model}-{dataset}"
        has_file = (EXPERIMENTS_DIR / f"{key}.yaml").exists()
        if has_file and key in table:
            both.append(key)
        elif not has_file and key not in table:
            missing.append(key)
    assert not missing, f"no experiments/<pair>.yaml and no UNSUPPORTED.yaml entry: {missing}"
    assert not both, f"both a config file and an UNSUPPORTED.yaml entry: {both}"
