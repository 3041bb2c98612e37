"""llama.cpp's `llama-server`, built once from the source in the `llama-cpp-python` sdist
(the registry has no Linux wheel of it): static, the server target only, no web UI."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import IO

from .common import LlmServerError, cache_root, last_error, mkdir, pip_download, say, sha256_of

LLAMA_SDIST = "llama-cpp-python"
BUILD_JOBS = 2  # the machines this project runs on have 2 cores
LLAMA_SDIST_VERSION = "0.3.36"
LLAMA_SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_CCACHE=OFF",
)
# Built for this CPU (-march=native) but without AMX: some virtual machines report AMX
# and then kill the first tile instruction with SIGILL (seen on this project's machines).
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def cmake_options() -> list[str]:
    options = list(CMAKE_OPTIONS)
    if platform.machine().lower() in ("x86_64", "amd64"):
        options += [f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}"]
    return options


def server_binary(root: Path | None = None) -> Path:
    return (root or cache_root()) / f"llama.cpp-{LLAMA_SDIST_VERSION}" / "llama-server"


def build_tools() -> dict[str, str]:
    """cmake, make and a C and C++ compiler, or one line saying which one is missing."""
    found: dict[str, str] = {}
    wanted = {
        "cmake": ("cmake",),
        "make": ("make", "ninja"),
        "C compiler": (os.environ.get("CC") or "", "cc", "gcc", "clang"),
        "C++ compiler": (os.environ.get("CXX") or "", "c++", "g++", "clang++"),
    }
    for what, names in wanted.items():
        path = next((p for p in (shutil.which(n) for n in names if n) if p), None)
        if path is None:
            raise LlmServerError(
                f"cannot build llama-server: no {what} on PATH (looked for "
                f"{', '.join(n for n in names if n)}); install it (Debian: apt-get install "
                "build-essential cmake) and run it again"
            )
        found[what] = path
    return found


def build_server(root: Path | None = None, *, jobs: int = BUILD_JOBS) -> Path:
    binary = server_binary(root)
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    tools = build_tools()
    work = mkdir(binary.parent.parent) / f".build-llama.cpp-{LLAMA_SDIST_VERSION}"
    shutil.rmtree(work, ignore_errors=True)
    log = binary.parent.parent / "build.log"
    try:
        mkdir(work)
        say(f"downloading the {LLAMA_SDIST} {LLAMA_SDIST_VERSION} sdist (llama.cpp source)")
        files = pip_download(
            [f"{LLAMA_SDIST}=={LLAMA_SDIST_VERSION}"],
            work,
            what=f"the {LLAMA_SDIST} {LLAMA_SDIST_VERSION} sdist",
            sdist=True,
        )
        sdist = next((f for f in files if f.name.endswith(".tar.gz")), None)
        if sdist is None:
            raise LlmServerError(f"pip downloaded no {LLAMA_SDIST} sdist into {work}")
        got = sha256_of(sdist)
        if got != LLAMA_SDIST_SHA256:
            raise LlmServerError(
                f"{sdist.name} has sha256 {got}, expected {LLAMA_SDIST_SHA256}; refusing to "
                "build from an unknown source"
            )
        source = _extract_llama_cpp(sdist, work / "src")
        build = work / "build"
        say(
            f"building llama-server with CMake ({jobs} jobs; about 14 CPU minutes, 7 or "
            f"more on 2 cores); log: {log}"
        )
        env = {**os.environ, "CC": tools["C compiler"], "CXX": tools["C++ compiler"]}
        with log.open("w") as out:
            _run_logged(
                [tools["cmake"], "-S", str(source), "-B", str(build), *cmake_options()],
                out,
                env,
                "cmake configure",
                log,
            )
            _run_logged(
                [
                    tools["cmake"],
                    "--build",
                    str(build),
                    "--target",
                    "llama-server",
                    "-j",
                    str(jobs),
                ],
                out,
                env,
                "cmake build",
                log,
            )
        built = build / "bin" / "llama-server"
        if not built.is_file():
            raise LlmServerError(f"the build finished but left no {built}; see {log}")
        mkdir(binary.parent)
        tmp = binary.with_name(".llama-server.partial")
        shutil.copy2(built, tmp)
        shutil.copy2(source / "LICENSE", binary.parent / "LICENSE")
        tmp.replace(binary)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"built {binary} ({binary.stat().st_size // 1_000_000} MB)")
    return binary


def _extract_llama_cpp(sdist: Path, dest: Path) -> Path:
    """Only the vendored llama.cpp tree of the sdist, refusing paths that leave ``dest``."""
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name + "/"]
        if not members:
            raise LlmServerError(f"{sdist.name} holds no vendor/llama.cpp source")
        for member in members:
            if member.name.startswith("/") or ".." in Path(member.name).parts:
                raise LlmServerError(f"{sdist.name}: unsafe path {member.name!r} in the archive")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # Python before 3.10.12 / 3.11.4: the names were checked above
            tar.extractall(dest, members=members)
    roots = list(dest.glob("*/vendor/llama.cpp"))
    if len(roots) != 1 or not (roots[0] / "CMakeLists.txt").is_file():
        raise LlmServerError(f"{sdist.name}: vendor/llama.cpp has no CMakeLists.txt")
    return roots[0]


def _run_logged(cmd: list[str], out: IO[str], env: dict[str, str], step: str, log: Path) -> None:
    proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise LlmServerError(
            f"{step} failed (exit {proc.returncode}): {last_error(log)}; full log: {log}"
        )
