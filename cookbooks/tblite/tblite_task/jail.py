"""The sandbox's inner half: one process per episode that runs the agent's commands.

Started by `sandbox.Sandbox` as ``python -I -S jail.py`` (standard library only, so any
interpreter the sandbox user can execute will do), usually as pid 1 of fresh mount, pid,
network, IPC and UTS namespaces. It reads one JSON settings line on stdin, prepares the
file system, answers ``{"ready": ...}`` and then serves one JSON command per line:

    -> {"cmd": "grep -c x a.txt", "timeout": 10, "max_output": 65536}
    <- {"exit": 0, "output": "3\\n", "violation": null, "detail": ""}

Each command is ``bash -c CMD`` in the workspace, in a session of its own, with rlimits
(file size, processes, address space, CPU, open files), no capabilities and
``no_new_privs``. While it runs the jail enforces the wall time, the output size and the
process count; when it ends, every process it left behind is killed, so nothing outlives
the command that started it. A broken limit is reported as a ``violation``; the host
side turns it into a failed rollout.

Only when this process is pid 1 of its own pid namespace does it kill with ``kill(-1)``
(everything in the namespace); otherwise it kills the command's process group alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import resource
import select
import signal
import sys
import time

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
# statvfs f_flag bits -> the mount flags a remount must repeat (locked ones above all)
ST_TO_MS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME}
ST_NODIRATIME, ST_RELATIME = 2048, 4096
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
SYS_CAPSET = 126  # x86_64; on other machines capset is skipped and the uid change drops caps
LINUX_CAPABILITY_VERSION_3 = 0x20080522
POLL_SECONDS = 0.01
FSIZE_MARK = b"File size limit exceeded"  # what bash prints for a child killed by SIGXFSZ

_libc = ctypes.CDLL(None, use_errno=True)


def _send(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _mount(source: str, target: str, flags: int) -> None:
    if _libc.mount(source.encode(), target.encode(), None, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            raw = line.split()[4]
            points.append(raw.encode().decode("unicode_escape"))
    return points


def _remount_readonly(point: str) -> bool:
    """Remount one mount point read-only, keeping its locked flags; False if it is gone."""
    try:
        st = os.statvfs(point)
    except OSError:
        return False
    if st.f_flag & 1:
        return True
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for st_bit, ms_bit in ST_TO_MS.items():
        if st.f_flag & st_bit:
            flags |= ms_bit
    if st.f_flag & ST_NODIRATIME:
        flags |= MS_NODIRATIME
    if st.f_flag & ST_RELATIME:
        flags |= MS_RELATIME
    _mount("none", point, flags)
    return True


def confine_filesystem(episode_dir: str, inside: str) -> int:
    """Bind the episode directory at ``inside`` and make every other mount read-only.

    Returns how many mounts were made read-only. Raises when one cannot be: a sandbox
    that leaves a writable mount behind must not start.
    """
    _mount("none", "/", MS_REC | MS_PRIVATE)
    _mount(episode_dir, inside, MS_BIND | MS_REC)
    done = 0
    for point in sorted(set(_mount_points()), key=len):
        if point == inside or point.startswith(inside.rstrip("/") + "/"):
            continue
        if _remount_readonly(point):
            done += 1
    return done


def _drop_privileges(uid: int | None, gid: int | None) -> None:
    """In the forked child before exec: no way back to any privilege."""
    # the bounding set first: dropping it needs CAP_SETPCAP, which the uid change takes
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    if uid is not None and gid is not None:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if os.uname().machine == "x86_64":
        header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
        data = (ctypes.c_uint32 * 6)()
        _libc.syscall(SYS_CAPSET, header, data)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _set_limits(limits: dict[str, int]) -> None:
    pairs = {
        "file_bytes": resource.RLIMIT_FSIZE,
        "processes": resource.RLIMIT_NPROC,
        "memory_bytes": resource.RLIMIT_AS,
        "cpu_seconds": resource.RLIMIT_CPU,
        "open_files": resource.RLIMIT_NOFILE,
    }
    for key, which in pairs.items():
        value = limits.get(key)
        if value and key == "processes":
            # in a user namespace the jail and its launcher share the agent's uid and
            # count against the limit; the jail's own count stops the command first
            value += 2
        if value:
            resource.setrlimit(which, (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class Jail:
    def __init__(self, settings: dict[str, object]) -> None:
        self.workdir = str(settings["workdir"])
        self.tmpdir = str(settings["tmpdir"])
        self.env = {str(k): str(v) for k, v in dict(settings["env"]).items()}  # type: ignore[call-overload]
        self.limits = {str(k): int(v) for k, v in dict(settings["limits"]).items()}  # type: ignore[call-overload]
        self.uid = settings.get("uid")
        self.gid = settings.get("gid")
        self.own_pid_namespace = os.getpid() == 1

    def process_count(self) -> int:
        if not self.own_pid_namespace:
            return 0
        return sum(1 for name in os.listdir("/proc") if name.isdigit()) - 1

    def kill_all(self, pgid: int) -> None:
        """Kill what the command started: the whole namespace when it is ours."""
        if self.own_pid_namespace:
            for _ in range(100):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(-1, signal.SIGKILL)
                self.reap()
                if self.process_count() <= 0:
                    break
                time.sleep(POLL_SECONDS)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)

    def reap(self) -> dict[int, int]:
        statuses = {}
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            statuses[pid] = status
        return statuses

    def spawn(self, cmd: str) -> tuple[int, int]:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                os.close(read_fd)
                os.setsid()
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(write_fd, 1)
                os.dup2(write_fd, 2)
                os.closerange(3, 1024)
                os.chdir(self.workdir)
                os.umask(0o022)
                _set_limits(self.limits)
                _drop_privileges(
                    int(self.uid) if self.uid is not None else None,  # type: ignore[call-overload]
                    int(self.gid) if self.gid is not None else None,  # type: ignore[call-overload]
                )
                for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                    signal.signal(sig, signal.SIG_DFL)
                os.execve("/bin/bash", ["bash", "-c", cmd], self.env)
            except BaseException as exc:
                os.write(2, f"sandbox: cannot start the command: {exc}\n".encode())
            os._exit(127)
        os.close(write_fd)
        return pid, read_fd

    def run(self, cmd: str, timeout: float, max_output: int) -> dict[str, object]:
        pid, fd = self.spawn(cmd)
        chunks: list[bytes] = []
        size = 0
        violation, detail = None, ""
        status: int | None = None
        deadline = time.monotonic() + timeout
        max_procs = self.limits.get("processes", 0)
        open_fd = True
        while True:
            if open_fd:
                ready, _, _ = select.select([fd], [], [], POLL_SECONDS)
                if ready:
                    data = os.read(fd, 65536)
                    if not data:
                        open_fd = False
                    else:
                        chunks.append(data)
                        size += len(data)
                        if size > max_output:
                            violation = "output_limit"
                            detail = f"the command printed more than {max_output} bytes"
                            break
            else:
                time.sleep(POLL_SECONDS)
            if self.own_pid_namespace:
                reaped = self.reap()  # orphans are ours to reap, as pid 1
                if status is None:
                    status = reaped.get(pid)
            elif status is None:
                done, st = os.waitpid(pid, os.WNOHANG)
                status = st if done else None
            # A command is over when its shell has exited and, in our own pid namespace,
            # so has every process it started: nothing runs on in the background.
            if status is not None and (not self.own_pid_namespace or self.process_count() <= 0):
                break
            if max_procs and self.process_count() >= max_procs:
                violation = "process_limit"
                detail = f"the command started {max_procs} or more processes at once"
                break
            if time.monotonic() > deadline:
                violation = "timeout"
                detail = f"the command ran longer than {timeout:g} s"
                break
        # Output still buffered when the shell exited belongs to the command.
        while open_fd and violation is None:
            ready, _, _ = select.select([fd], [], [], 0)
            if not ready:
                break
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
            size += len(data)
            if size > max_output:
                violation = "output_limit"
                detail = f"the command printed more than {max_output} bytes"
        self.kill_all(pid)
        os.close(fd)
        if status is None:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = -1
        self.reap()
        if violation is None and status is not None and status >= 0:
            if (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXFSZ) or (
                status != 0 and any(FSIZE_MARK in bytes(c) for c in chunks)
            ):
                violation = "file_size_limit"
                detail = f"a file grew past {self.limits.get('file_bytes', 0)} bytes"
            elif os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU:
                violation = "cpu_limit"
                detail = f"the command used more than {self.limits.get('cpu_seconds')} s of CPU"
        code = -1
        if status is not None and status >= 0:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        # after a violation the output is evidence, not a result: a little is enough
        keep = max_output if violation is None else min(max_output, 4096)
        output = b"".join(chunks)[:keep].decode("utf-8", errors="replace")
        return {"exit": code, "output": output, "violation": violation, "detail": detail}


def main() -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    line = sys.stdin.readline()
    try:
        settings = json.loads(line)
        jail = Jail(settings)
        confined = 0
        if settings.get("episode_dir"):
            confined = confine_filesystem(str(settings["episode_dir"]), jail.tmpdir)
        os.chdir(jail.workdir)
    except Exception as exc:
        _send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    _send(
        {
            "ready": True,
            "pid_namespace": jail.own_pid_namespace,
            "readonly_mounts": confined,
        }
    )
    for raw in sys.stdin:
        try:
            request = json.loads(raw)
            reply = jail.run(
                str(request["cmd"]), float(request["timeout"]), int(request["max_output"])
            )
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                reply = {
                    "exit": -1,
                    "output": "",
                    "violation": "process_limit",
                    "detail": "no process could be started",
                }
            else:
                reply = {"exit": -1, "output": "", "violation": "error", "detail": str(exc)}
        _send(reply)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
