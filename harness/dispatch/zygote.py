"""The zygote of the warm start: a process that has imported what a training job imports (torch, Lightning,
MLflow, the harness; ~8 s and ~13 CPU s per job when every job does it) and forks one child per local job.

It runs no torch op and starts no thread (checked: it refuses to serve otherwise), so a child may set its own
torch thread count and initialise OpenMP itself. One single-threaded ``select`` loop accepts requests from
``harness.dispatch.warm_client``, forks, relays the client's signals to the child, SIGKILLs the child when its
client dies, and reports each child's exit code. SIGTERM stops it accepting (its socket is removed, so new
clients start cold); it exits once its running children have ended, which it never cuts short.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import runpy
import select
import signal
import socket
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.dispatch.warm_client import INT, STDIO, recv_exact

PR_SET_PDEATHSIG = 1  # prctl(2): a signal the kernel sends this process when its parent exits
ALLOWED_OPTIONS = {"-u"}  # the zygote itself runs with -u, as submitit's tasks do


class ZygoteRefused(RuntimeError):
    """The zygote cannot serve (e.g. an import started a thread, after which fork is unsafe)."""


@dataclass
class Request:
    """What a client asked to run: ``python <options> -m <module> <args>`` in ``cwd`` with ``env``."""

    module: str
    args: list[str]
    env: dict[str, str]
    cwd: str

    @classmethod
    def parse(cls, data: dict) -> Request | None:
        """None when ``argv`` is not ``[-u] -m module args...`` (the client then runs it cold)."""
        argv = list(data["argv"])
        if "-m" not in argv:
            return None
        at = argv.index("-m")
        if at + 1 >= len(argv) or not set(argv[:at]) <= ALLOWED_OPTIONS:
            return None
        return cls(argv[at + 1], argv[at + 2:], dict(data["env"]), str(data["cwd"]))


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def preload(modules: Iterable[str]) -> None:
    """Import ``modules``; ZygoteRefused if that left more than this one thread."""
    for name in modules:
        importlib.import_module(name)
        if thread_count() > 1:
            names = [Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task")]
            raise ZygoteRefused(f"importing {name} started threads {names}; a fork would copy them broken")


@dataclass
class Child:
    pid: int
    conn: socket.socket | None  # None once its client went away


class Zygote:
    def __init__(self, path: str):
        self.path = path
        self.parent = os.getppid()
        self.stopping = False
        self.children: dict[int, Child] = {}

    def _stop(self, *_args) -> None:
        self.stopping = True

    def serve(self) -> Request | None:
        """Serve until stopped and drained (returns None), or, in a forked child, return its request."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        os.chmod(self.path, 0o600)
        listener.listen(16)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select through the pipe
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C stops the sweep driver, which stops us
        print(f"zygote {os.getpid()} serving {self.path}", flush=True)
        while True:
            if os.getppid() != self.parent:  # the sweep driver died without stopping us
                self.stopping = True
            if self.stopping and listener.fileno() >= 0:
                listener.close()
                self._remove_socket()
            self._reap()
            if self.stopping and not self.children:
                return None
            watched = [wake_r, *(c.conn for c in self.children.values() if c.conn is not None)]
            if listener.fileno() >= 0:
                watched.append(listener)
            readable, _, _ = select.select(watched, [], [], 1.0)
            for ready in readable:
                if ready is wake_r:
                    os.read(wake_r, 512)
                elif ready is listener:
                    request = self._accept(listener)
                    if request is not None:  # we are the forked child
                        for fd in (wake_r, wake_w):
                            os.close(fd)
                        listener.close()
                        return request
                else:
                    self._from_client(ready)

    def _remove_socket(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(os.path.dirname(self.path))

    def _accept(self, listener: socket.socket) -> Request | None:
        """Read one request and fork its child; in the child return the request, in the zygote None."""
        conn, _ = listener.accept()
        conn.settimeout(10.0)
        fds: list[int] = []
        request = None
        try:
            head, fds, _, _ = socket.recv_fds(conn, INT.size, len(STDIO))
            head += recv_exact(conn, INT.size - len(head)) or b""
            payload = recv_exact(conn, INT.unpack(head)[0])
            if payload is not None and len(fds) == len(STDIO):
                request = Request.parse(json.loads(payload))
        except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
            print(f"zygote: unreadable request ({exc})", flush=True)
        conn.settimeout(None)
        if request is None:  # the client runs it cold
            for fd in fds:
                os.close(fd)
            self._send(conn, 0)
            conn.close()
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._become_child(conn, fds)
            return request
        for fd in fds:
            os.close(fd)
        self.children[pid] = Child(pid, conn)
        self._send(conn, pid)
        print(f"zygote: job {pid}: -m {request.module} {' '.join(request.args)}", flush=True)
        return None

    def _become_child(self, conn: socket.socket, fds: list[int]) -> None:
        """In the forked child: die with the zygote, default signal handling, the client's stdio, no sockets."""
        zygote = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote:  # the zygote died before prctl took effect
            os._exit(1)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for child in self.children.values():
            if child.conn is not None:
                child.conn.close()
        self.children.clear()
        conn.close()
        for target, fd in zip(STDIO, fds, strict=True):
            os.dup2(fd, target)
        for fd in fds:
            if fd not in STDIO:
                os.close(fd)

    @staticmethod
    def _send(conn: socket.socket, value: int) -> None:
        with contextlib.suppress(OSError):  # the client is gone; select sees it and its child is killed
            conn.sendall(INT.pack(value))

    def _from_client(self, conn: socket.socket) -> None:
        child = next(c for c in self.children.values() if c.conn is conn)
        try:
            data = conn.recv(INT.size * 16)
        except OSError:
            data = b""
        if not data:  # the client died (or was SIGKILLed by submitit's controller): its job goes with it
            self._signal(child.pid, signal.SIGKILL)
            conn.close()
            child.conn = None
            return
        for (signum,) in INT.iter_unpack(data[: len(data) - len(data) % INT.size]):
            self._signal(child.pid, signum)

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is not None and child.conn is not None:
                self._send(child.conn, os.waitstatus_to_exitcode(status))
                child.conn.close()


def run_request(request: Request) -> None:
    """In the forked child: become ``python -u -m <module> <args>`` in the client's folder and environment.

    Called at the top of ``harness.dispatch.warm``'s main, so the job's exit (code, exception, KeyboardInterrupt,
    threads still running, atexit) is the interpreter's own, as in a fresh process."""
    start_dir = os.getcwd()
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    if sys.path and sys.path[0] == start_dir:  # python -m puts its working directory first
        sys.path[0] = request.cwd
    sys.argv = [request.module, *request.args]
    runpy.run_module(request.module, run_name="__main__", alter_sys=True)
