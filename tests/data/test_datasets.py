"""Tests of the dataset registry and readers (gnnrec.data.datasets).

Each reader is checked on a hand-written miniature of its folder; tests marked ``realdata``
check exact counts of the real files under ``$GNNREC_DATA`` (skipped when it is unset, failing
when it is set but a dataset folder is missing).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import polars as pl
import pytest

from gnnrec.config import DataConfig, SyntheticConfig
from gnnrec.data.datasets import DATASETS, load_dataset, resolve_root
from gnnrec.data.synthetic import simulate, write_synthetic
from gnnrec.data.types import RawLog
from gnnrec.errors import ConfigError, DataError

TINY_SYNTH = SyntheticConfig(num_users=40, num_items=50, num_categories=5, events_per_user=8)


def _write(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode(encoding)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def _load(root: Path, dataset: str, **kw: object) -> pl.DataFrame:
    return load_dataset(DataConfig(dataset=dataset, root=str(root), **kw)).frame  # type: ignore[arg-type]


# ------------------------------------------------------------------ registry and roots


def test_registry_lists_datasets_with_metadata() -> None:
    assert DATASETS.names() == [
        "amazon-grocery",
        "diginetica",
        "diginetica-session",
        "file",
        "gowalla",
        "ml-100k",
        "synthetic",
        "taobao",
        "tmall-mb",
        "tmall-session",
    ]
    keys = {"description", "folder", "given_split", "target", "timestamps", "categories", "variants"}
    for name in DATASETS:
        assert set(DATASETS.meta(name)) == keys
    assert DATASETS.meta("taobao")["folder"] == "taobao-userbehavior"
    assert DATASETS.meta("taobao")["variants"] == ("head", "timeslice")
    assert DATASETS.meta("tmall-mb")["given_split"] is True
    assert DATASETS.meta("tmall-mb")["target"] == "buy"
    assert DATASETS.meta("gowalla")["timestamps"] is False
    assert DATASETS.meta("ml-100k")["target"] is None


def test_resolve_root_prefers_config_then_environment() -> None:
    assert resolve_root(DataConfig(root="/a"), environ={"GNNREC_DATA": "/b"}) == Path("/a")
    assert resolve_root(DataConfig(), environ={"GNNREC_DATA": "/b"}) == Path("/b")
    with pytest.raises(ConfigError, match="data.root.*GNNREC_DATA"):
        resolve_root(DataConfig(), environ={})
    with pytest.raises(ConfigError, match="GNNREC_DATA"):
        resolve_root(DataConfig(), environ={"GNNREC_DATA": ""})


def test_missing_dataset_folder_names_the_expected_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path / "lightgcn-gowalla")):
        _load(tmp_path, "gowalla")


def test_missing_file_in_dataset_folder_names_it(tmp_path: Path) -> None:
    _write(tmp_path / "lightgcn-gowalla" / "train.txt.gz", "0 1\n")
    with pytest.raises(DataError, match=r"test\.txt\.gz: file not found"):
        _load(tmp_path, "gowalla")


def test_config_mistakes_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.dataset: unknown dataset 'nope' \(known: amazon-grocery, diginetica, "):
        _load(tmp_path, "nope")
    with pytest.raises(ConfigError, match="data.variant: dataset 'taobao' has no variant 'x'"):
        _load(tmp_path, "taobao", variant="x")
    with pytest.raises(ConfigError, match="data.variant: dataset 'gowalla' has no variants"):
        _load(tmp_path, "gowalla", variant="x")
    with pytest.raises(ConfigError, match="data.path is only read by dataset 'file'"):
        _load(tmp_path, "gowalla", path="x.csv")
    with pytest.raises(ConfigError, match="data.path is required"):
        _load(tmp_path, "file")


# ------------------------------------------------------------------ synthetic and file


def test_synthetic_dataset_uses_seed_and_carries_ground_truth() -> None:
    cfg = DataConfig(dataset="synthetic", synthetic=TINY_SYNTH)
    raw = load_dataset(cfg, seed=3)
    log, truth = simulate(TINY_SYNTH, 3)
    assert raw.frame.equals(log)
    assert raw.meta["ground_truth"].equals(truth)
    assert raw.target_behavior == "buy"
    assert not load_dataset(cfg, seed=4).frame.equals(log)


def test_file_dataset_reads_a_csv(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    _write(path, "u;i;act\na;x;pv\nb;y;buy\n")
    raw = load_dataset(
        DataConfig(
            dataset="file",
            path=str(path),
            delimiter=";",
            has_header=True,
            columns={"user": "u", "item": "i", "behavior": "act"},
        )
    )
    assert raw.frame.select("user", "item", "behavior").rows() == [("a", "x", "pv"), ("b", "y", "buy")]
    assert raw.frame["_row"].to_list() == [1, 2]
    assert "ground_truth" not in raw.meta


def test_file_dataset_picks_up_simulator_ground_truth(tmp_path: Path) -> None:
    path = tmp_path / "sim.parquet"
    write_synthetic(path, TINY_SYNTH, 0)
    raw = load_dataset(DataConfig(dataset="file", path=str(path)))
    log, truth = simulate(TINY_SYNTH, 0)
    assert raw.frame.height == log.height
    assert raw.meta["ground_truth"].equals(truth)


# ------------------------------------------------------------------ miniature real folders


def test_taobao_reader(tmp_path: Path) -> None:
    _write(
        tmp_path / "taobao-userbehavior" / "UserBehavior_head_whole_users.csv.gz",
        "1,10,100,pv,1511544070\n1,11,100,buy,1511544071\n2,10,100,fav,1505117799\n",
    )
    _write(tmp_path / "taobao-userbehavior" / "UserBehavior_timeslice_20171126.csv.gz", "7,8,9,cart,5\n")
    raw = load_dataset(DataConfig(dataset="taobao", root=str(tmp_path)))
    assert raw.frame.columns == ["user", "item", "category", "behavior", "timestamp", "_row"]
    assert raw.frame.row(2) == ("2", "10", "100", "fav", "1505117799", 3)
    assert raw.behavior_map["pv"] == "view"
    assert raw.target_behavior == "buy"
    assert raw.source.endswith("UserBehavior_head_whole_users.csv.gz")
    sliced = _load(tmp_path, "taobao", variant="timeslice")
    assert sliced.row(0) == ("7", "8", "9", "cart", "5", 1)


def test_taobao_reader_reports_a_line_with_extra_fields(tmp_path: Path) -> None:
    path = tmp_path / "taobao-userbehavior" / "UserBehavior_head_whole_users.csv.gz"
    _write(path, "1,10,100,pv,1511544070\n1,10,100,pv,1511544070,9\n")
    with pytest.raises(DataError, match="UserBehavior_head_whole_users.csv.gz: cannot parse as 5"):
        _load(tmp_path, "taobao")


def test_taobao_reader_reports_a_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "taobao-userbehavior" / "UserBehavior_head_whole_users.csv.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(b"1,2,3,pv,4\n")[:-6])
    with pytest.raises(DataError, match="cannot decompress gzip file"):
        _load(tmp_path, "taobao")


def _fake_ml100k(root: Path) -> None:
    raw = root / "movielens-100k" / "raw"
    _write(raw / "u.data.gz", "1\t10\t5\t100\n2\t11\t3\t200\n1\t12\t4\t300\n2\t13\t1\t400\n")
    _write(raw / "u.genre", "unknown|0\nAction|1\nComedy|2\nDrama|3\n\n")
    # genres: 10 Comedy+Drama -> Comedy; 11 unknown+Drama -> Drama; 12 unknown only; 13 none
    _write(
        raw / "u.item",
        "10|Caf\xe9 (1990)|01-Jan-1990||http://x|0|0|1|1\n"
        "11|B (1991)|01-Jan-1991||http://y|1|0|0|1\n"
        "12|C (1992)|||http://z|1|0|0|0\n"
        "13|D (1993)|||http://w|0|0|0|0\n",
        encoding="latin-1",
    )


def test_ml100k_reader_picks_one_genre_per_movie(tmp_path: Path) -> None:
    _fake_ml100k(tmp_path)
    raw = load_dataset(DataConfig(dataset="ml-100k", root=str(tmp_path), default_behavior="buy"))
    assert raw.frame.columns == ["user", "item", "category", "timestamp", "_row"]
    assert raw.frame.rows() == [
        ("1", "10", "2", "100", 1),
        ("2", "11", "3", "200", 2),
        ("1", "12", "0", "300", 3),
        ("2", "13", None, "400", 4),
    ]
    assert raw.meta["category_names"].rows() == [
        ("0", "unknown"),
        ("1", "Action"),
        ("2", "Comedy"),
        ("3", "Drama"),
    ]
    assert raw.target_behavior == "buy"  # the configured default behaviour
    assert raw.meta["item_title"].rows() == [
        ("10", "Café (1990)"),
        ("11", "B (1991)"),
        ("12", "C (1992)"),
        ("13", "D (1993)"),
    ]
    genres = dict(raw.meta["item_genres"].rows())
    assert genres == {"10": ["Comedy", "Drama"], "11": ["unknown", "Drama"], "12": ["unknown"]}


def test_gowalla_reader_explodes_adjacency_lines(tmp_path: Path) -> None:
    folder = tmp_path / "lightgcn-gowalla"
    _write(folder / "train.txt.gz", "0 1 2 3\n1 4\n2\n3  5 6 \n")
    _write(folder / "test.txt.gz", "0 7\n1 8 9")
    raw = load_dataset(DataConfig(dataset="gowalla", root=str(tmp_path)))
    assert raw.frame.columns == ["user", "item", "split", "_row"]
    assert raw.frame.rows() == [
        ("0", "1", "train", 1),
        ("0", "2", "train", 1),
        ("0", "3", "train", 1),
        ("1", "4", "train", 2),
        ("3", "5", "train", 4),
        ("3", "6", "train", 4),
        ("0", "7", "test", 1),
        ("1", "8", "test", 2),
        ("1", "9", "test", 2),
    ]
    assert raw.meta["file_rows"] == {"train.txt.gz": 6, "test.txt.gz": 3}


@pytest.mark.parametrize(
    ("variant", "view_test_split"), [(None, "unused"), ("mbcgcn", "unused"), ("mule", "train")]
)
def test_tmall_reader_labels_behaviour_and_split(
    tmp_path: Path, variant: str | None, view_test_split: str
) -> None:
    folder = tmp_path / "tmall-mbcgcn"
    for behavior in ("view", "cart", "buy"):
        _write(folder / f"{behavior}_train.txt.gz", f"0\t1\t2\n1\t{behavior}3\n")
        _write(folder / f"{behavior}_test.txt.gz", f"0\t{behavior}9\n1\t{behavior}8")
    raw = load_dataset(DataConfig(dataset="tmall-mb", root=str(tmp_path), variant=variant))
    f = raw.frame
    assert f.columns == ["user", "item", "behavior", "split", "_row"]
    assert raw.target_behavior == "buy"
    assert f.height == 3 * 5
    assert f.filter(pl.col("item") == "view9").row(0) == ("0", "view9", "view", view_test_split, 1)
    assert f.filter(pl.col("item") == "cart8").row(0) == ("1", "cart8", "cart", view_test_split, 2)
    assert f.filter(pl.col("item") == "buy8").row(0) == ("1", "buy8", "buy", "test", 2)
    assert f.filter(pl.col("item") == "buy3").row(0) == ("1", "buy3", "buy", "train", 2)
    assert f.filter(pl.col("behavior") == "view", pl.col("split") == "train").height == (
        3 if view_test_split == "unused" else 5
    )


# ------------------------------------------------------------------ real data


@pytest.fixture
def real_root() -> Path:
    root = os.environ.get("GNNREC_DATA")
    if not root:
        pytest.skip("GNNREC_DATA is not set")
    return Path(root)


def _real_raw(root: Path, dataset: str, variant: str | None = None) -> RawLog:
    folder = DATASETS.meta(dataset)["folder"]
    if not (root / folder).is_dir():
        pytest.fail(f"GNNREC_DATA is set but the dataset folder {root / folder} is missing")
    return load_dataset(DataConfig(dataset=dataset, root=str(root), variant=variant))


def _real(root: Path, dataset: str, variant: str | None = None) -> pl.DataFrame:
    return _real_raw(root, dataset, variant).frame


def _counts(frame: pl.DataFrame, *cols: str) -> dict[tuple[str, ...], int]:
    return {tuple(r[:-1]): r[-1] for r in frame.group_by(*cols).len().rows()}


@pytest.mark.realdata
def test_real_taobao_head(real_root: Path) -> None:
    f = _real(real_root, "taobao")
    assert f.height == 84_287
    assert f["user"].n_unique() == 814
    assert f["item"].n_unique() == 55_233
    assert f["category"].n_unique() == 2_911
    assert _counts(f, "behavior") == {("pv",): 75_693, ("cart",): 4_494, ("fav",): 2_351, ("buy",): 1_749}
    ts = f["timestamp"].cast(pl.Int64)
    assert ((ts < 1511539200) | (ts >= 1512316800)).sum() == 35  # outside the official period
    assert (f.group_by("item").agg(pl.col("category").n_unique())["category"] > 1).sum() == 1


@pytest.mark.realdata
def test_real_taobao_timeslice(real_root: Path) -> None:
    f = _real(real_root, "taobao", "timeslice")
    assert f.height == 96_168
    assert f["user"].n_unique() == 58_732
    assert f["item"].n_unique() == 75_384
    assert f["category"].n_unique() == 3_757


@pytest.mark.realdata
def test_real_ml100k(real_root: Path) -> None:
    raw = _real_raw(real_root, "ml-100k")
    f = raw.frame
    assert f.height == 100_000
    assert f["user"].n_unique() == 943
    assert f["item"].n_unique() == 1_682
    assert f["category"].null_count() == 0
    assert f["category"].n_unique() == 19  # every genre is some movie's first genre
    item_cat = dict(f.select("item", "category").unique().rows())
    names = dict(raw.meta["category_names"].rows())
    assert names["3"] == "Animation" and names["18"] == "Western"
    assert item_cat["1"] == "3"  # Toy Story: Animation|Children's|Comedy -> Animation
    assert item_cat["2"] == "1"  # GoldenEye: Action|Adventure|Thriller -> Action
    assert item_cat["267"] == "0"  # unknown
    assert raw.meta["item_title"].height == 1_682
    assert raw.meta["item_title"].row(0) == ("1", "Toy Story (1995)")


@pytest.mark.realdata
def test_real_gowalla(real_root: Path) -> None:
    f = _real(real_root, "gowalla")
    assert _counts(f, "split") == {("train",): 810_128, ("test",): 217_242}
    assert f["user"].n_unique() == 29_858
    assert f["item"].n_unique() == 40_981


@pytest.mark.realdata
def test_real_tmall_mb(real_root: Path) -> None:
    f = _real(real_root, "tmall-mb")
    assert _counts(f, "behavior", "split") == {
        ("view", "train"): 858_505,
        ("cart", "train"): 180_027,
        ("buy", "train"): 92_180,
        ("view", "unused"): 15_449,
        ("cart", "unused"): 15_449,
        ("buy", "test"): 15_449,
    }
    assert f["user"].n_unique() == 15_449
    assert f["item"].n_unique() == 11_953
    mule = _real(real_root, "tmall-mb", "mule")
    assert _counts(mule.filter(pl.col("split") == "train"), "behavior") == {
        ("view",): 873_954,
        ("cart",): 195_476,
        ("buy",): 92_180,
    }
