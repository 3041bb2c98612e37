"""Banking77 data: the bundled sample, the full CSVs, and a downloader for them.

By default the container serves ``data/sample.csv``: six queries per label written for
this project (3 train, 1 val, 2 heldout). Set ``BANKING77_DATA_DIR`` to a directory
with the public ``train.csv`` (and optionally ``test.csv`` and ``categories.json``) to
use the full data set; ``python -m banking77_task.data download`` fetches it.

Full-data splits are stratified by label with a fixed seed:
without ``test.csv``, train.csv -> 80% train / 10% val / 10% heldout;
with ``test.csv``, train.csv -> 90% train / 10% val and test.csv is the heldout split.
Every split is then shuffled with the same fixed seed, so a seed range such as
``0:50`` covers many labels instead of the first label of a label-sorted file.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

PACKAGE_DATA = Path(__file__).resolve().parent / "data"
SAMPLE_CSV = PACKAGE_DATA / "sample.csv"
CATEGORIES_JSON = PACKAGE_DATA / "categories.json"
DATA_DIR_ENV = "BANKING77_DATA_DIR"
SPLIT_SEED = 77
SPLITS = ("train", "val", "heldout")
DEFAULT_BASE_URL = (
    "https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/master/banking_data"
)
DOWNLOAD_FILES = ("train.csv", "test.csv", "categories.json")


class DataError(Exception):
    """Missing or malformed data; the message says which file and what to do."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str


@dataclass(frozen=True)
class Banking77Data:
    labels: tuple[str, ...]
    splits: dict[str, tuple[Example, ...]]
    source: str  # "sample" or the data directory


def _read_labels(path: Path) -> tuple[str, ...]:
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the label list ({exc})") from exc
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(x, str) and x for x in labels)
    ):
        raise DataError(f"{path}: expected a JSON list of label names")
    if len(set(labels)) != len(labels):
        raise DataError(f"{path}: label names repeat")
    return tuple(labels)


def read_csv(path: Path, labels: Sequence[str] | None = None) -> list[dict[str, str]]:
    """Rows of a text,category[,split] CSV; unknown labels are an error naming the line."""
    known = set(labels) if labels is not None else None
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            if "text" not in fields or "category" not in fields:
                raise DataError(f"{path}: expected columns text,category; found {fields}")
            rows = []
            for lineno, row in enumerate(reader, start=2):
                text, label = (row.get("text") or "").strip(), (row.get("category") or "").strip()
                if not text or not label:
                    raise DataError(f"{path}:{lineno}: empty text or category")
                if known is not None and label not in known:
                    raise DataError(f"{path}:{lineno}: unknown category {label!r}")
                rows.append({**row, "text": text, "category": label})
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _shuffled(examples: list[Example], rng: random.Random) -> tuple[Example, ...]:
    out = list(examples)
    rng.shuffle(out)
    return tuple(out)


def load_sample() -> Banking77Data:
    labels = _read_labels(CATEGORIES_JSON)
    buckets: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for row in read_csv(SAMPLE_CSV, labels):
        buckets[row["split"]].append(Example(row["text"], row["category"]))
    rng = random.Random(SPLIT_SEED)
    return Banking77Data(labels, {s: _shuffled(buckets[s], rng) for s in SPLITS}, "sample")


def load_dir(directory: Path) -> Banking77Data:
    """The full data set from ``directory`` (train.csv required; test.csv optional)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory (set {DATA_DIR_ENV} to the data folder)")
    train_csv, test_csv = directory / "train.csv", directory / "test.csv"
    if not train_csv.is_file():
        raise DataError(
            f"{train_csv}: missing; run `python -m banking77_task.data download` or point "
            f"{DATA_DIR_ENV} at a folder holding train.csv"
        )
    cats = directory / "categories.json"
    labels = _read_labels(cats if cats.is_file() else CATEGORIES_JSON)
    by_label: dict[str, list[Example]] = {label: [] for label in labels}
    for row in read_csv(train_csv, labels):
        by_label[row["category"]].append(Example(row["text"], row["category"]))
    has_test = test_csv.is_file()
    val_share, heldout_share = (0.10, 0.0) if has_test else (0.10, 0.10)
    rng = random.Random(SPLIT_SEED)
    buckets: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for label in labels:
        group = by_label[label]
        rng.shuffle(group)
        n_val, n_held = round(len(group) * val_share), round(len(group) * heldout_share)
        buckets["val"].extend(group[:n_val])
        buckets["heldout"].extend(group[n_val : n_val + n_held])
        buckets["train"].extend(group[n_val + n_held :])
    if has_test:
        buckets["heldout"] = [Example(r["text"], r["category"]) for r in read_csv(test_csv, labels)]
    splits = {s: _shuffled(buckets[s], rng) for s in SPLITS}
    return Banking77Data(labels, splits, str(directory))


def load_default() -> Banking77Data:
    """The full data when ``BANKING77_DATA_DIR`` is set, else the bundled sample."""
    directory = os.environ.get(DATA_DIR_ENV, "").strip()
    return load_dir(Path(directory).expanduser()) if directory else load_sample()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base else Path.home() / ".cache"
    return root / "gepa-cli" / "banking77"


def download(
    dest: Path | None = None,
    base_url: str = DEFAULT_BASE_URL,
    *,
    timeout: float = 60.0,
    transport: httpx.BaseTransport | None = None,
) -> Path:
    """Fetch train.csv, test.csv and categories.json into ``dest``; return ``dest``.

    Each file is checked (CSV header, JSON label list) before it replaces an older copy,
    so an interrupted or wrong download never leaves a half-written data set behind.
    """
    dest = Path(dest) if dest is not None else default_cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    with httpx.Client(timeout=timeout, follow_redirects=True, transport=transport) as client:
        for name in DOWNLOAD_FILES:
            url = base_url.rstrip("/") + "/" + name
            try:
                resp = client.get(url)
            except httpx.HTTPError as exc:
                raise DataError(f"{url}: download failed ({type(exc).__name__}: {exc})") from exc
            if resp.status_code != 200:
                raise DataError(f"{url}: download failed (HTTP {resp.status_code})")
            tmp = dest / f".{name}.part"
            tmp.write_bytes(resp.content)
            try:
                if name.endswith(".json"):
                    _read_labels(tmp)
                else:
                    read_csv(tmp)
            except DataError as exc:
                tmp.unlink(missing_ok=True)
                raise DataError(f"{url}: not a Banking77 file ({exc})") from exc
            os.replace(tmp, dest / name)
    load_dir(dest)  # the files must also agree with each other (labels in the CSVs)
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m banking77_task.data")
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="fetch the public Banking77 CSVs")
    dl.add_argument("--dest", type=Path, default=None, help=f"default: {default_cache_dir()}")
    dl.add_argument("--base-url", default=DEFAULT_BASE_URL)
    info = sub.add_parser("info", help="show the splits the container would serve")
    info.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "download":
            path = download(args.dest, args.base_url)
            print(f"downloaded Banking77 to {path}; use it with: export {DATA_DIR_ENV}={path}")
        else:
            data = load_dir(args.data_dir) if args.data_dir else load_default()
            sizes = ", ".join(f"{s}={len(data.splits[s])}" for s in SPLITS)
            print(f"source={data.source} labels={len(data.labels)} {sizes}")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
