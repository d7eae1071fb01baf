"""One RecBole 1.2.1 run for ``recbole_side_by_side.py``; executed inside the RecBole venv.

This file must not import gnnrec: it runs with the throwaway venv's interpreter (torch 2.13,
numpy < 2, RecBole 1.2.1), in its own working directory (RecBole writes ``log/`` and
``log_tensorboard/`` into the current directory).

Usage::

    python recbole_runner.py SPEC.json RESULT.json

``SPEC.json``: ``{"model": "LightGCN", "threads": 1, "eval_repeats": 3, "config": {...}}``,
where ``config`` is RecBole's ``config_dict`` (built by ``recbole_config`` in
``recbole_side_by_side.py``). ``RESULT.json`` gets the timings, peak RSS and metrics.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB: ``VmHWM`` (``ru_maxrss`` survives ``execve``, so in a
    child it can report the parent's high-water mark), ``ru_maxrss`` where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _clear_cache(model: Any) -> None:
    # LightGCN / NGCF cache the propagated embeddings for full ranking; clear them so a timed
    # evaluation includes the propagation, as gnnrec's timed ``encode`` + ``evaluate`` does.
    for name in ("restore_user_e", "restore_item_e"):
        if hasattr(model, name):
            setattr(model, name, None)


def main(spec_path: str, result_path: str) -> int:
    t_start = time.perf_counter()
    spec = json.loads(Path(spec_path).read_text())
    threads = int(spec.get("threads", 1))
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

    t = time.perf_counter()
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    import_s = time.perf_counter() - t
    torch.set_num_threads(threads)

    config = Config(model=spec["model"], dataset="ml-100k", config_dict=spec["config"])
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    torch.set_num_threads(
        threads
    )  # after RecBole's own setup, in case it touched the pool

    t = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    data_s = time.perf_counter() - t

    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    # Time training alone: wrap the epoch function (validation runs in ``_valid_epoch``).
    epoch_times: list[float] = []
    epoch_cpu: list[
        float
    ] = []  # process CPU seconds: robust to other jobs on a shared machine
    valid_times: list[float] = []
    valid_scores: list[float] = []
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

    def timed_train(*args: Any, **kwargs: Any) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        out = train_epoch(*args, **kwargs)
        epoch_times.append(time.perf_counter() - t0)
        epoch_cpu.append(time.process_time() - c0)
        print(
            f"[recbole {spec['model']}] epoch {len(epoch_times)}: {epoch_times[-1]:.2f} s",
            flush=True,
        )
        return out

    def timed_valid(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = valid_epoch(*args, **kwargs)
        valid_times.append(time.perf_counter() - t0)
        valid_scores.append(float(out[0]))
        return out

    trainer._train_epoch = timed_train
    trainer._valid_epoch = timed_valid

    t = time.perf_counter()
    best_valid_score, _best_valid = trainer.fit(
        train_data, valid_data, saved=True, show_progress=False
    )
    fit_s = time.perf_counter() - t

    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)

    # One full-ranking evaluation of the validation set with the best model, timed
    # ``eval_repeats`` times (median reported), the propagation cache cleared each time.
    eval_times: list[float] = []
    eval_cpu: list[float] = []
    for _ in range(int(spec.get("eval_repeats", 3))):
        _clear_cache(trainer.model)
        t0, c0 = time.perf_counter(), time.process_time()
        valid = trainer.evaluate(valid_data, load_best_model=False, show_progress=False)
        eval_times.append(time.perf_counter() - t0)
        eval_cpu.append(time.process_time() - c0)

    result = {
        "side": "recbole",
        "model": spec["model"],
        "epochs": len(epoch_times),
        # eval_step is 1 and RecBole keeps the first strictly-better score: first argmax
        "best_epoch": valid_scores.index(max(valid_scores)) + 1
        if valid_scores
        else None,
        "epoch_s": statistics.fmean(epoch_times) if epoch_times else 0.0,
        "epoch_times": epoch_times,
        "epoch_cpu_s": statistics.fmean(epoch_cpu) if epoch_cpu else 0.0,
        "valid_epoch_s": statistics.fmean(valid_times) if valid_times else 0.0,
        "eval_s": statistics.median(eval_times),
        "eval_times": eval_times,
        "eval_cpu_s": statistics.median(eval_cpu),
        "fit_s": fit_s,
        "data_s": data_s,
        "import_s": import_s,
        "wall_s": time.perf_counter() - t_start,
        "peak_rss_mb": peak_rss_mb(),
        "threads": torch.get_num_threads(),
        "test": {k.lower(): float(v) for k, v in dict(test).items()},
        "valid": {k.lower(): float(v) for k, v in dict(valid).items()},
        "best_valid_score": float(best_valid_score),
        "data": {
            "users": int(dataset.user_num) - 1,  # RecBole reserves index 0 for padding
            "items": int(dataset.item_num) - 1,
            "interactions": int(dataset.inter_num),
            "train": int(train_data._dataset.inter_num),
            "valid": int(valid_data._dataset.inter_num),
            "test": int(test_data._dataset.inter_num),
        },
        "versions": {
            "torch": torch.__version__,
            "recbole": _version("recbole"),
            "numpy": _version("numpy"),
        },
    }
    Path(result_path).write_text(json.dumps(result, indent=2))
    return 0


def _version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 - informational only
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
