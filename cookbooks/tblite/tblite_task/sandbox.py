"""The sandbox's host half: a fresh temporary workspace per episode, limits, clean-up.

    async with Sandbox(files, limits) as box:
        result = await box.run("ls -la")        # CommandResult(exit_code, output)

Each episode gets its own directory under ``<tmp>/tblite-sandbox/``. With Linux
namespaces (the ``namespaces`` isolation) a jail process (`jail.py`) runs in new mount,
pid, network, IPC and UTS namespaces: the episode directory is mounted at ``/tmp`` with
the task files in ``/tmp/workspace``, every other mount is read-only, there is no network
but a downed loopback, and commands run without capabilities (as an unprivileged uid
when gepa-cli runs as root). Without namespaces (``processes``) the same limits hold but
the file system and the network are not isolated; `isolation_level()` says which.

A broken limit raises `SandboxViolation` (the rollout then fails with its reason). The
episode directory is removed on every exit path; one left by a killed process (SIGKILL
leaves no chance to clean) is removed by `sweep_stale` when a later sandbox starts.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import itertools
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

JAIL = Path(__file__).with_name("jail.py")
INSIDE_TMP = "/tmp"
INSIDE_WORKSPACE = "/tmp/workspace"
SANDBOX_ENV = "TBLITE_SANDBOX"  # "auto" (default), "namespaces" (required) or "processes"
BASE_ENV = "TBLITE_SANDBOX_DIR"  # where episode directories go (default <tmp>/tblite-sandbox)
# When gepa-cli runs as root, commands run as one of these otherwise unused uids, one per
# live episode, so a process limit and file ownership are per episode.
ROOT_UID_BASE = 1_900_000_000
ROOT_UID_SPAN = 100_000
JAIL_GRACE_SECONDS = 5.0
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
READ_ONLY_MARK = "Read-only file system"


@dataclass(frozen=True)
class Limits:
    max_commands: int = 40  # agent commands per episode (the verifier's are extra)
    command_seconds: float = 10.0  # wall time of one command
    episode_seconds: float = 90.0  # wall time of the whole episode, verifier included
    max_output_bytes: int = 256 * 1024  # what one command may print
    max_processes: int = 64  # processes alive at once
    max_file_bytes: int = 16 * 1024 * 1024  # one file
    max_workspace_bytes: int = 64 * 1024 * 1024  # the whole episode directory
    max_workspace_files: int = 5_000
    memory_bytes: int = 2 * 1024 * 1024 * 1024  # address space of one process
    cpu_seconds: int = 30  # CPU time of one process
    open_files: int = 256

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> Limits:
        if not values:
            return cls()
        known = set(asdict(cls()))
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown sandbox limit {unknown[0]!r}; known: {sorted(known)}")
        merged = {**asdict(cls()), **dict(values)}
        for key, value in merged.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"sandbox limit {key!r} must be a positive number")
        return cls(**merged)


class SandboxError(RuntimeError):
    """The sandbox could not be set up (not the agent's fault)."""


# the violation that ends the agent's turn rather than the rollout (episode.py)
COMMAND_LIMIT = "command_limit"


class SandboxViolation(RuntimeError):
    """A command broke a limit; the episode is over and the rollout fails with ``reason``."""

    def __init__(self, kind: str, detail: str, command: str = "") -> None:
        self.kind, self.detail, self.command = kind, detail, command
        shown = command if len(command) <= 120 else command[:117] + "..."
        where = f" (command: {shown})" if command else ""
        super().__init__(f"sandbox {kind}: {detail}{where}")

    @property
    def reason(self) -> str:
        return str(self)


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_code: int
    output: str


# ---------------------------------------------------------------- isolation probing

_probe_lock = threading.Lock()
_probed: dict[str, str] = {}
_uid_slots = itertools.count()


def _unshare_argv() -> list[str]:
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    argv = [unshare]
    if os.geteuid() != 0:
        argv += ["--user", "--map-root-user"]
    return [
        *argv,
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--ipc",
        "--uts",
        "--",
    ]


def _jail_python() -> str:
    """An interpreter the sandbox user can run: ours unless it sits in a private folder."""
    if os.geteuid() != 0:
        return sys.executable
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and _world_executable(Path(candidate)):
            return candidate
    raise SandboxError("no python3 that an unprivileged user may run (for the sandbox jail)")


def _world_executable(path: Path) -> bool:
    try:
        real = path.resolve(strict=True)
    except OSError:
        return False
    if not real.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)


def isolation_level() -> str:
    """``namespaces`` when this machine runs the jail in its own namespaces, else
    ``processes``; ``TBLITE_SANDBOX`` can demand either."""
    wanted = os.environ.get(SANDBOX_ENV, "auto")
    if wanted not in ("auto", "namespaces", "processes"):
        raise SandboxError(f"{SANDBOX_ENV}={wanted!r}; use auto, namespaces or processes")
    if wanted == "processes":
        return "processes"
    with _probe_lock:
        if "level" not in _probed:
            _probed["level"], _probed["why"] = _probe()
    if wanted == "namespaces" and _probed["level"] != "namespaces":
        raise SandboxError(
            f"{SANDBOX_ENV}=namespaces but this machine cannot isolate: {_probed['why']}"
        )
    return _probed["level"]


def _probe() -> tuple[str, str]:
    if sys.platform != "linux":
        return "processes", f"namespaces need Linux, this is {sys.platform}"
    try:
        python = _jail_python()
    except SandboxError as exc:
        return "processes", str(exc)
    base = base_dir()
    episode = Path(tempfile.mkdtemp(prefix="probe-", dir=base))
    try:
        (episode / "workspace").mkdir()
        settings = _settings("namespaces", episode, Limits(), _root_uid())
        if settings.get("uid") is not None:
            _chown_tree(episode, int(settings["uid"]), int(settings["gid"]))
        line = (
            json.dumps(settings)
            + "\n"
            + json.dumps(
                {
                    "cmd": "touch /tmp/workspace/ok && ! touch /etc/.tblite-probe 2>/dev/null",
                    "timeout": 10,
                    "max_output": 4096,
                }
            )
            + "\n"
        )
        proc = subprocess.run(
            [*_unshare_argv(), python, "-I", "-S", str(JAIL)],
            input=line,
            capture_output=True,
            text=True,
            timeout=30,
        )
        lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
        if not lines or not lines[0].get("ready"):
            why = lines[0].get("error") if lines else proc.stderr.strip()[-300:]
            return "processes", f"the jail did not start in namespaces: {why}"
        if len(lines) < 2 or lines[1].get("exit") != 0:
            return "processes", "the namespaced jail left the host file system writable"
        return "namespaces", "ok"
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return "processes", f"unshare failed: {exc}"
    finally:
        remove_tree(episode)


# ---------------------------------------------------------------- episode directories


def base_dir() -> Path:
    base = Path(os.environ.get(BASE_ENV) or Path(tempfile.gettempdir()) / "tblite-sandbox")
    base.mkdir(parents=True, exist_ok=True)
    # the sandbox uid must be able to reach its own episode directory, and nothing more
    with contextlib.suppress(OSError):  # a folder someone else owns keeps its mode
        base.chmod(0o711)
    return base


def _root_uid() -> int | None:
    if os.geteuid() != 0:
        return None
    return ROOT_UID_BASE + (os.getpid() * 7919 + next(_uid_slots)) % ROOT_UID_SPAN


def _settings(level: str, episode: Path, limits: Limits, uid: int | None) -> dict[str, Any]:
    isolated = level == "namespaces"
    tmp = INSIDE_TMP if isolated else str(episode)
    work = INSIDE_WORKSPACE if isolated else str(episode / "workspace")
    return {
        "episode_dir": str(episode) if isolated else None,
        "workdir": work,
        "tmpdir": tmp,
        "uid": uid,
        "gid": uid,
        "env": {
            "PATH": PATH,
            "HOME": tmp,
            "TMPDIR": tmp,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TERM": "dumb",
            "SHELL": "/bin/bash",
            "USER": "agent",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        "limits": {
            "file_bytes": limits.max_file_bytes,
            "processes": limits.max_processes,
            "memory_bytes": limits.memory_bytes,
            "cpu_seconds": limits.cpu_seconds,
            "open_files": limits.open_files,
        },
    }


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def remove_tree(path: Path) -> None:
    """rmtree that also gets through folders the agent made unreadable."""

    def fix(_func: Any, failed: str, _exc: Any) -> None:
        parent = os.path.dirname(failed)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o700)
        with contextlib.suppress(OSError):
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)

    if path.exists() or path.is_symlink():
        shutil.rmtree(path, onerror=fix)


def _start_time(pid: int) -> str | None:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat_line.rsplit(")", 1)[1].split()[19]


def sweep_stale(base: Path | None = None) -> list[str]:
    """Remove episode directories whose owning process is gone; returns their names."""
    base = base or base_dir()
    removed = []
    for owner in sorted(base.glob("*.owner")):
        try:
            info = json.loads(owner.read_text())
            alive = _start_time(int(info["pid"])) == info.get("start")
        except (OSError, ValueError, KeyError, TypeError):
            alive = False
        if alive:
            continue
        episode = base / owner.name[: -len(".owner")]
        remove_tree(episode)
        owner.unlink(missing_ok=True)
        removed.append(episode.name)
    return removed


_swept: set[str] = set()
# Sandboxes of this process still open: removed at interpreter exit (a SIGTERM that ends
# the process normally), in case a rollout task never reached its own clean-up.
_live: dict[int, Sandbox] = {}


@atexit.register
def _close_live() -> None:
    for box in list(_live.values()):
        box.close_now()


def _sweep_once(base: Path) -> None:
    key = f"{os.getpid()}:{base}"
    if key not in _swept:
        _swept.add(key)
        sweep_stale(base)


# ---------------------------------------------------------------- the sandbox


class Sandbox:
    """One episode: its directory, its jail process and its limits."""

    def __init__(
        self,
        files: Mapping[str, str | bytes],
        limits: Limits | None = None,
        executable: tuple[str, ...] = (),
    ) -> None:
        self.files = dict(files)
        self.executable = executable
        self.limits = limits or Limits()
        self.level = ""
        self.episode: Path | None = None
        self.commands_run = 0
        self._owner: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._deadline = 0.0
        self._uid: int | None = None

    @property
    def workspace(self) -> Path:
        if self.episode is None:
            raise SandboxError("the sandbox is not started")
        return self.episode / "workspace"

    @property
    def remaining_seconds(self) -> float:
        return self._deadline - asyncio.get_running_loop().time()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.level = await loop.run_in_executor(None, isolation_level)
        base = base_dir()
        _sweep_once(base)
        self._deadline = loop.time() + self.limits.episode_seconds
        name = f"ep-{uuid.uuid4().hex[:16]}"
        self._owner = base / f"{name}.owner"
        self._owner.write_text(json.dumps({"pid": os.getpid(), "start": _start_time(os.getpid())}))
        self.episode = base / name
        _live[id(self)] = self
        try:
            self.episode.mkdir(mode=0o700)
            _write_files(self.workspace, self.files, self.executable)
            self._uid = _root_uid() if self.level == "namespaces" else None
            if self._uid is not None:
                _chown_tree(self.episode, self._uid, self._uid)
            await self._spawn_jail()
        except BaseException:
            await self.close()
            raise

    async def _spawn_jail(self) -> None:
        assert self.episode is not None
        python = _jail_python() if self.level == "namespaces" else sys.executable
        argv = [python, "-I", "-S", str(JAIL)]
        if self.level == "namespaces":
            argv = [*_unshare_argv(), *argv]
        self._proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),
            # one JSON line holds the output, escaped: up to 6 characters per byte
            limit=6 * self.limits.max_output_bytes + 65536,
        )
        settings = _settings(self.level, self.episode, self.limits, self._uid)
        reply = await self._exchange(settings, JAIL_GRACE_SECONDS * 4)
        if not reply.get("ready"):
            raise SandboxError(f"the sandbox jail did not start: {reply.get('error')}")

    async def _exchange(self, message: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write((json.dumps(message) + "\n").encode())
            await proc.stdin.drain()
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except (asyncio.TimeoutError, ConnectionError, ValueError) as exc:
            raise SandboxViolation(
                "unresponsive", f"the sandbox jail stopped answering ({exc!r})"
            ) from exc
        if not line:
            raise SandboxViolation("unresponsive", "the sandbox jail exited")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def run(self, command: str, *, agent: bool = True) -> CommandResult:
        """Run one command in the workspace; agent commands count toward the limit."""
        if self._proc is None:
            raise SandboxError("the sandbox is not started")
        if agent:
            if self.commands_run >= self.limits.max_commands:
                raise SandboxViolation(
                    COMMAND_LIMIT,
                    f"the agent asked for more than {self.limits.max_commands} commands",
                    command,
                )
            self.commands_run += 1
        remaining = self.remaining_seconds
        if remaining <= 0:
            raise SandboxViolation(
                "episode_timeout", f"the episode ran longer than {self.limits.episode_seconds:g} s"
            )
        timeout = min(self.limits.command_seconds, remaining)
        reply = await self._exchange(
            {"cmd": command, "timeout": timeout, "max_output": self.limits.max_output_bytes},
            timeout + JAIL_GRACE_SECONDS,
        )
        violation = reply.get("violation")
        if violation == "timeout" and timeout < self.limits.command_seconds:
            raise SandboxViolation(
                "episode_timeout",
                f"the episode ran longer than {self.limits.episode_seconds:g} s",
                command,
            )
        if violation:
            raise SandboxViolation(str(violation), str(reply.get("detail", "")), command)
        result = CommandResult(command, int(reply["exit"]), str(reply["output"]))
        if self.level == "namespaces" and result.exit_code != 0:
            for line in result.output.splitlines():
                if line.rstrip().endswith(READ_ONLY_MARK):
                    raise SandboxViolation(
                        "write_outside",
                        f"the command tried to write outside the workspace: {line.strip()}",
                        command,
                    )
        self._check_workspace(command)
        return result

    def _check_workspace(self, command: str) -> None:
        assert self.episode is not None
        total, count = 0, 0
        for dirpath, dirnames, filenames in os.walk(self.episode):
            count += len(dirnames) + len(filenames)
            for name in filenames:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
            if count > self.limits.max_workspace_files:
                raise SandboxViolation(
                    "workspace_limit",
                    f"more than {self.limits.max_workspace_files} files in the workspace",
                    command,
                )
            if total > self.limits.max_workspace_bytes:
                raise SandboxViolation(
                    "workspace_limit",
                    f"the workspace grew past {self.limits.max_workspace_bytes} bytes",
                    command,
                )

    async def close(self) -> None:
        """Stop the jail (and with it every process of the episode), remove the files."""
        proc = self._proc
        self._kill_jail()
        if proc is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
        self._remove()

    def close_now(self) -> None:
        """`close` without an event loop (interpreter exit): kill, then remove."""
        self._kill_jail()
        self._remove()

    def _kill_jail(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            # The launcher leads its own process group. Signal it with os.killpg, never
            # proc.kill(): Popen polls (and so reaps) the child before signalling, and
            # asyncio's watcher then loses track of it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def _remove(self) -> None:
        if self.episode is not None:
            remove_tree(self.episode)
        if self._owner is not None:
            self._owner.unlink(missing_ok=True)
        _live.pop(id(self), None)


def _die_with_parent(parent_pid: int) -> None:
    """In the jail's launcher before exec: a SIGKILLed gepa-cli takes the jail along."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    # gepa-cli may have died between the fork and the prctl: no signal would come then
    if os.getppid() != parent_pid:
        os._exit(1)


def _write_files(
    workspace: Path, files: Mapping[str, str | bytes], executable: tuple[str, ...] = ()
) -> None:
    workspace.mkdir(mode=0o755)
    for rel, content in sorted(files.items()):
        path = workspace / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise SandboxError(f"task file {rel!r} is not a relative path inside the workspace")
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("/"):
            path.mkdir(exist_ok=True)
            continue
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        path.chmod(0o755 if rel in executable else 0o644)
