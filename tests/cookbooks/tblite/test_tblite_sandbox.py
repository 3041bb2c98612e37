"""The sandbox stops what an agent must not do, and leaves nothing behind.

Each escape is tried the way an agent would try it (one shell command) and must end in
a `SandboxViolation` naming the reason; the rollout then fails with that reason
(`test_tblite_container.py`). Machines without namespaces skip the isolation-only tests.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest
from tblite_task.sandbox import (
    INSIDE_WORKSPACE,
    Limits,
    Sandbox,
    SandboxViolation,
    base_dir,
    isolation_level,
    sweep_stale,
)

FAST = Limits(command_seconds=1.0, episode_seconds=20.0, max_output_bytes=64 * 1024)
needs_namespaces = pytest.mark.skipif(
    isolation_level() != "namespaces", reason="this machine cannot run the namespace sandbox"
)


@pytest.fixture(autouse=True)
def private_base(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path_factory.mktemp("sandboxes")
    base.chmod(0o711)
    monkeypatch.setenv("TBLITE_SANDBOX_DIR", str(base))
    return base


def _leftovers() -> list[str]:
    return sorted(p.name for p in base_dir().iterdir())


async def _violation(command: str, limits: Limits = FAST) -> SandboxViolation:
    async with Sandbox({"a.txt": "hello\n"}, limits) as box:
        with pytest.raises(SandboxViolation) as info:
            await box.run(command)
        return info.value


async def test_commands_run_in_the_workspace_with_its_files() -> None:
    async with Sandbox({"a.txt": "hello\n", "sub/b.txt": "b\n"}, FAST, ("a.txt",)) as box:
        result = await box.run("cat a.txt && ls sub && test -x a.txt && echo x")
        assert (result.exit_code, result.output) == (0, "hello\nb.txt\nx\n")
        assert (await box.run("exit 3")).exit_code == 3
        await box.run("echo new > c.txt")
        assert (box.workspace / "c.txt").read_text() == "new\n"
    assert _leftovers() == []


@needs_namespaces
async def test_the_workspace_has_a_fixed_path_inside() -> None:
    async with Sandbox({}, FAST) as box:
        assert (await box.run("pwd")).output == INSIDE_WORKSPACE + "\n"


@needs_namespaces
@pytest.mark.parametrize(
    "target",
    ["/etc/tblite-escape", "$HOME/../../tblite-escape", "{repo}/tblite-escape", "/tblite-escape"],
)
async def test_writing_outside_the_workspace_is_stopped(target: str) -> None:
    repo = Path(__file__).resolve().parents[3]
    exc = await _violation(f"echo pwned > {target.format(repo=repo)}")
    assert exc.kind == "write_outside", exc
    assert "outside the workspace" in exc.reason
    assert not (repo / "tblite-escape").exists()
    assert not Path("/etc/tblite-escape").exists()


@needs_namespaces
async def test_the_host_tmp_is_out_of_sight(tmp_path: Path) -> None:
    """Inside, /tmp is the episode's own folder: the host's /tmp cannot even be named."""
    (tmp_path / "secret.txt").write_text("s3cret\n")
    async with Sandbox({}, FAST) as box:
        result = await box.run(f"cat {tmp_path}/secret.txt; echo pwned > {tmp_path}/x")
        assert "s3cret" not in result.output and result.exit_code != 0
    assert not (tmp_path / "x").exists()


@needs_namespaces
async def test_the_host_stays_untouched_even_when_the_error_is_hidden(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("original\n")
    victim.chmod(0o666)
    async with Sandbox({}, FAST) as box:
        result = await box.run(
            f"echo pwned > {victim} 2>/dev/null; rm -f {victim} 2>/dev/null; true"
        )
        assert result.exit_code == 0
    assert victim.read_text() == "original\n"


async def test_a_command_that_runs_forever_is_stopped() -> None:
    exc = await _violation("sleep 600")
    assert exc.kind == "timeout" and "longer than 1 s" in exc.reason


@needs_namespaces
async def test_a_background_process_cannot_outlive_its_command() -> None:
    exc = await _violation("sleep 600 & echo started")
    assert exc.kind == "timeout"


@needs_namespaces
async def test_a_fork_bomb_is_stopped() -> None:
    exc = await _violation(":(){ :|:& };:", Limits(command_seconds=10.0, max_processes=32))
    assert exc.kind == "process_limit" and "32 or more processes" in exc.reason


async def test_printing_gigabytes_is_stopped() -> None:
    exc = await _violation("head -c 2000000000 /dev/zero")
    assert exc.kind == "output_limit" and "more than 65536 bytes" in exc.reason


async def test_a_file_past_the_size_limit_is_stopped() -> None:
    exc = await _violation("head -c 3000000 /dev/zero > big", Limits(max_file_bytes=1_000_000))
    assert exc.kind == "file_size_limit"


async def test_filling_the_workspace_is_stopped() -> None:
    limits = Limits(max_workspace_bytes=500_000, max_file_bytes=400_000)
    exc = await _violation("for i in 1 2 3; do head -c 300000 /dev/zero > f$i; done", limits)
    assert exc.kind == "workspace_limit"


async def test_the_command_and_episode_limits() -> None:
    async with Sandbox({}, Limits(max_commands=2, command_seconds=5.0)) as box:
        await box.run("true")
        await box.run("true")
        await box.run("true", agent=False)  # the verifier's commands do not count
        with pytest.raises(SandboxViolation, match="more than 2 commands"):
            await box.run("true")
    async with Sandbox({}, Limits(command_seconds=5.0, episode_seconds=1.0)) as box:
        with pytest.raises(SandboxViolation) as info:
            await box.run("sleep 3")
        assert info.value.kind == "episode_timeout"


@needs_namespaces
async def test_there_is_no_network() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        async with Sandbox({}, FAST) as box:
            probe = (
                "python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(1); "
                f's.connect(("127.0.0.1", {port}))\' && echo connected'
            )
            result = await box.run(probe + " 2>&1 | tail -1")
            assert "connected" not in result.output
            assert "Network is unreachable" in result.output or "refused" in result.output
    finally:
        server.close()


@needs_namespaces
async def test_commands_run_without_privileges() -> None:
    async with Sandbox({}, FAST) as box:
        caps = await box.run("grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status")
        assert all(line.endswith("0000000000000000") for line in caps.output.splitlines())
        assert (await box.run("mount -o remount,rw / 2>&1")).exit_code != 0


async def test_nothing_is_left_after_errors_and_cancellation() -> None:
    with pytest.raises(RuntimeError):
        async with Sandbox({"a": "1"}, FAST) as box:
            await box.run("true")
            raise RuntimeError("the agent crashed")

    async def slow() -> None:
        async with Sandbox({"a": "1"}, Limits(command_seconds=30.0)) as box:
            await box.run("sleep 30")

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(slow(), 1.0)
    # a command that made its folder unreadable does not stop the clean-up either
    async with Sandbox({}, FAST) as box:
        await box.run("mkdir -p locked/deep && touch locked/deep/f && chmod 000 locked/deep locked")
    assert _leftovers() == []


def test_sweep_removes_folders_of_dead_processes_only(tmp_path: Path) -> None:
    base = base_dir()
    dead, alive = base / "ep-dead", base / "ep-alive"
    for folder in (dead, alive):
        (folder / "workspace").mkdir(parents=True)
    (base / "ep-dead.owner").write_text('{"pid": 999999999, "start": "1"}')
    start = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    (base / "ep-alive.owner").write_text(f'{{"pid": {os.getpid()}, "start": "{start}"}}')
    assert sweep_stale() == ["ep-dead"]
    assert _leftovers() == ["ep-alive", "ep-alive.owner"]


async def test_the_process_sandbox_keeps_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without namespaces: no isolation, but the same limits and clean-up."""
    monkeypatch.setenv("TBLITE_SANDBOX", "processes")
    async with Sandbox({"a.txt": "hi\n"}, FAST) as box:
        assert box.level == "processes"
        assert (await box.run("cat a.txt")).output == "hi\n"
        assert str(box.workspace) == (await box.run("pwd")).output.strip()
        with pytest.raises(SandboxViolation, match="timeout"):
            await box.run("sleep 600")
        with pytest.raises(SandboxViolation, match="output_limit"):
            await box.run("yes")
        assert (await box.run("echo still here")).output == "still here\n"
    assert _leftovers() == []
