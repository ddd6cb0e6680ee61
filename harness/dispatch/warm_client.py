"""The client side of the warm start: stands in for ``python`` in a local job's command and has the zygote
(``harness.dispatch.zygote``) fork the job instead of starting a fresh interpreter.

It imports the standard library only (its start costs ~30 ms, not the ~8 s of torch + Lightning + MLflow). It
hands the zygote its argv, environment, working directory and its stdin/stdout/stderr file descriptors, relays
SIGINT/SIGTERM/SIGUSR1/SIGUSR2 to the forked job and exits as the job did (exit code, or the same signal), so
submitit's controller sees what it would see of a plain ``python -u -m submitit.core._submit <folder>``
(requeue code 144 included). If no zygote answers, or it refuses the request, it ``execv``s the real
interpreter with the same arguments: the job then runs cold, as without a warm start.

Wire format (unix stream socket): client → zygote: a 4-byte length carrying the fds 0, 1, 2 (SCM_RIGHTS), then
that many bytes of JSON ``{"argv", "env", "cwd"}``, then any number of 4-byte signal numbers; zygote → client:
the job's pid (0: refused), then its exit code as ``os.waitstatus_to_exitcode`` gives it (negative: the signal).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys

RELAYED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
INT = struct.Struct("!i")
STDIO = (0, 1, 2)


def recv_exact(sock: socket.socket, n: int) -> bytes | None:
    """``n`` bytes, or None when the peer closed first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def recv_int(sock: socket.socket) -> int | None:
    data = recv_exact(sock, INT.size)
    return None if data is None else INT.unpack(data)[0]


def send_request(sock: socket.socket, argv: list[str]) -> None:
    payload = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    socket.send_fds(sock, [INT.pack(len(payload))], list(STDIO))
    sock.sendall(payload)


def cold_start(argv: list[str]) -> None:
    """Replace this process by the real interpreter running ``argv`` (never returns)."""
    os.execv(sys.executable, [sys.executable, *argv])


def exit_like(code: int) -> None:
    """Exit as the job did: its exit code, or killed by the same signal (never returns)."""
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code  # a signal whose default action does not end the process
    os._exit(code)


def run(socket_path: str, argv: list[str]) -> None:
    """Run ``python <argv>`` through the zygote at ``socket_path``, or cold when none answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_path)
    except OSError:
        sock.close()
        cold_start(argv)

    def relay(signum: int, _frame) -> None:
        with contextlib.suppress(OSError):  # the zygote is gone; the job went with it (it dies with the zygote)
            sock.sendall(INT.pack(signum))

    for sig in RELAYED_SIGNALS:  # before the request, so a signal sent while the job starts reaches it
        signal.signal(sig, relay)
    try:
        send_request(sock, argv)
        pid = recv_int(sock)
    except OSError:
        pid = None
    if not pid:  # refused, or the zygote went away before forking: run cold
        sock.close()
        cold_start(argv)  # exec resets the relays to the default actions
    code = recv_int(sock)
    if code is None:
        print(f"warm start: the zygote at {socket_path} went away while job pid {pid} ran", file=sys.stderr)
        code = 1
    exit_like(code)
