"""The exploration configs of experiments/ validate, replay sections included.

(tests/test_experiments.py validates every config's sections and names; this adds the
replay strategy/knob check that needs :mod:`gnnrec.explore`.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gnnrec.config import load_config
from gnnrec.explore.replay import check_replay_config

ROOT = Path(__file__).resolve().parents[2] / "experiments"
CONFIGS = [
    "replay-synthetic",
    "mf_bpr-synthetic-replay",
    "mf_bpr-ml-100k-replay",
    "tgnn_migration-synthetic-replay",
    "lightgcn-synthetic-mmr",
    "mf_bpr-synthetic-linucb",
]


@pytest.mark.parametrize("name", CONFIGS)
def test_exploration_config_validates(name: str) -> None:
    cfg = load_config(ROOT / f"{name}.yaml")
    check_replay_config(cfg)
    if "replay" in name:
        assert cfg.split.mode == "temporal"  # replay in time order needs a temporal split
        assert "topk" in cfg.replay.strategies  # the pure-exploitation reference
    else:
        assert cfg.rerank.strategy != "none"
