from __future__ import annotations

import csv
import functools
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from banking77_task.data import DataError, download, load_default, load_dir, load_sample

REAL = Path("/work/shared/data/banking77")
LABELS = load_sample().labels


def write_dir(path: Path, per_label: int = 20, test: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "categories.json").write_text(json.dumps(list(LABELS)))
    names = ["train.csv", "test.csv"] if test else ["train.csv"]
    for name in names:
        with (path / name).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["text", "category"])
            for label in LABELS:
                for i in range(per_label if name == "train.csv" else 3):
                    w.writerow([f"{name} query {i} about {label}", label])
    return path


def test_sample_covers_every_label() -> None:
    data = load_sample()
    assert len(data.labels) == 77
    for split, per_label in (("train", 3), ("val", 1), ("heldout", 2)):
        rows = data.splits[split]
        assert len(rows) == 77 * per_label
        assert {ex.label for ex in rows} == set(data.labels)


def test_full_loader_splits_by_fixed_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = write_dir(tmp_path / "full")
    data = load_dir(d)
    sizes = {s: len(rows) for s, rows in data.splits.items()}
    assert sizes == {"train": 77 * 16, "val": 77 * 2, "heldout": 77 * 2}
    texts = [ex.text for rows in data.splits.values() for ex in rows]
    assert len(texts) == len(set(texts)) == 77 * 20
    assert load_dir(d) == data  # same split every time
    monkeypatch.setenv("BANKING77_DATA_DIR", str(d))
    assert load_default().splits == data.splits

    with_test = load_dir(write_dir(tmp_path / "withtest", test=True))
    assert len(with_test.splits["heldout"]) == 77 * 3
    assert all(ex.text.startswith("test.csv") for ex in with_test.splits["heldout"])
    assert len(with_test.splits["val"]) == 77 * 2


def test_full_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a directory"):
        load_dir(tmp_path / "missing")
    with pytest.raises(DataError, match=r"train\.csv: missing"):
        load_dir(tmp_path)
    (tmp_path / "train.csv").write_text("text,category\nhello,no_such_label\n")
    with pytest.raises(DataError, match=r"train.csv:2: unknown category"):
        load_dir(tmp_path)
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="expected columns text,category"):
        load_dir(tmp_path)


@pytest.mark.skipif(not (REAL / "train.csv").is_file(), reason="real Banking77 data not present")
def test_real_data_directory() -> None:
    data = load_dir(REAL)
    assert len(data.labels) == 77
    assert sum(len(rows) for rows in data.splits.values()) == 10003
    assert 0.75 < len(data.splits["train"]) / 10003 < 0.85
    assert {ex.label for ex in data.splits["heldout"]} == set(data.labels)


@pytest.fixture()
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = write_dir(tmp_path / "served", per_label=5, test=True)
    handler = functools.partial(
        type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
        directory=str(root),
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        thread.join(5)


def test_download_from_local_server(file_server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = file_server
    dest = download(tmp_path / "dl", base)
    for name in ("train.csv", "test.csv", "categories.json"):
        assert (dest / name).read_bytes() == (root / name).read_bytes()
    assert len(load_dir(dest).splits["heldout"]) == 77 * 3
    with pytest.raises(DataError, match="HTTP 404"):
        download(tmp_path / "dl2", base + "/nowhere")


def test_download_cli_default_cache_dir(
    file_server: tuple[str, Path], cookbook_dir: Path, isolated_user_state: Path
) -> None:
    base, _ = file_server
    cmd = [sys.executable, "-m", "banking77_task.data", "download", "--base-url", base]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cookbook_dir)
    assert proc.returncode == 0, proc.stderr
    cache = isolated_user_state / ".cache" / "gepa-cli" / "banking77"
    assert (cache / "train.csv").is_file() and str(cache) in proc.stdout
    bad = [*cmd[:-1], base + "/nowhere"]
    proc = subprocess.run(bad, capture_output=True, text=True, cwd=cookbook_dir)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
