"""The command line: error contract (one `error:` line, exit 2), config validation, listings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import one_error_line, run_cli


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["run", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2
    assert one_error_line(err) == f"error: {tmp_path / 'nope.yaml'}: config file not found"


def test_unknown_config_key_names_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  lr: 0.01\n  learning_rate: 0.1\n")
    code, _, err = run_cli(["run", str(cfg)], capsys)
    assert code == 2
    assert one_error_line(err) == f"error: {cfg}: train.learning_rate: unknown key"


def test_wrong_type_names_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("eval:\n  ks: [10, twenty]\n")
    code, _, err = run_cli(["run", str(cfg)], capsys)
    assert code == 2
    assert "eval.ks.1: Input should be a valid integer" in one_error_line(err)


def test_bad_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\n")
    code, _, err = run_cli(["run", str(cfg), "--set", "train.lr=-1"], capsys)
    assert code == 2
    assert "train.lr: Input should be greater than 0" in one_error_line(err)
    code, _, err = run_cli(["run", str(cfg), "--set", "trainlr"], capsys)
    assert code == 2
    assert one_error_line(err) == "error: --set expects key.path=value, got 'trainlr'"


def test_unknown_model_param(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "data:\n  dataset: synthetic\n  synthetic: {num_users: 30, num_items: 40, num_categories: 4}\n"
        "model:\n  name: mf_bpr\n  params: {dimm: 8}\n"
    )
    code, _, err = run_cli(["run", str(cfg), "--out", str(tmp_path / "r"), "-q"], capsys)
    assert code == 2
    assert one_error_line(err) == "error: model.params.dimm: unknown key"


def test_unknown_model_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  synthetic: {num_users: 30, num_items: 40, num_categories: 4}\nmodel: {name: gcnn}\n")
    code, _, err = run_cli(["run", str(cfg), "--out", str(tmp_path / "r"), "-q"], capsys)
    assert code == 2
    line = one_error_line(err)
    assert line.startswith("error: unknown model 'gcnn' (known: ")
    assert "mf_bpr" in line


def test_monitor_must_be_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {monitor: ndcg@50}\n")
    code, _, err = run_cli(["run", str(cfg)], capsys)
    assert code == 2
    assert "train.monitor 'ndcg@50' must be one of the evaluated metrics" in one_error_line(err)


def test_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["run"], capsys)
    assert code == 2
    assert one_error_line(err).startswith("error: the following arguments are required: config")


def test_cuda_requested_without_cuda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  synthetic: {num_users: 30, num_items: 40, num_categories: 4}\n")
    code, _, err = run_cli(["run", str(cfg), "--device", "cuda", "--out", str(tmp_path / "r"), "-q"], capsys)
    assert code == 2
    assert "cuda" in one_error_line(err).lower()


def test_listings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0
    for name in ("pop", "itemknn", "mf_bpr", "neumf", "mlp"):
        assert name in out
    code, out, _ = run_cli(["datasets"], capsys)
    assert code == 0
    for name in ("synthetic", "taobao", "ml-100k", "gowalla", "tmall-mb", "file"):
        assert name in out


def test_console_script_help() -> None:
    exe = Path(sys.executable).parent / "gnnrec"
    res = subprocess.run([str(exe), "run", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    assert "--set" in res.stdout and "--out" in res.stdout and "--device" in res.stdout
