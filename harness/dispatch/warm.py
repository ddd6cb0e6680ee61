"""Warm start for local jobs: a zygote that imported torch, Lightning, MLflow and the harness once forks each
job, instead of every job paying ~8 s (~13 CPU s) of imports in a fresh interpreter.

submitit's LocalExecutor keeps doing everything else (job folders, pickles, requeue, cancel by SIGINT, the
controller whose pid is the job id); only the ``python`` of its task command becomes
``<python> -m harness.dispatch.warm client <socket> --``, a stdlib-only client (``warm_client``) that has the
zygote (``zygote``) fork the job, or runs it cold when no zygote answers.

    python -m harness.dispatch.warm serve <socket> [module ...]   # the zygote, preloading the modules
    python -m harness.dispatch.warm client <socket> -- <python args>

Only the standard library is imported here: the client's start must stay cheap.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# Always preloaded: what submitit's task and harness.dispatch.job import before the entry point.
BASE_PRELOAD = ("submitit.core.submission", "submitit.helpers", "harness.dispatch.job", "harness.config")
# What the training entry point imports, also inside its functions (harness.train.run and what it calls).
TRAIN_PRELOAD = ("torch", "lightning", "mlflow", "harness.train.run", "harness.sizes", "models.accounting",
                 "harness.allocator", "models.kernels.self_check", "harness.tracking.sync",
                 "lightning.pytorch.plugins.environments", "lightning.pytorch.strategies",
                 "harness.tracking.trainer_lock", "harness.data.datamodule", "harness.tracking.logger",
                 "harness.tracking.record", "harness.train.checkpointing", "harness.train.ema",
                 "harness.train.module")
# Libraries that start a thread at import unless told not to (numpy/scipy's OpenBLAS pool, pyarrow's jemalloc
# purger, imported by MLflow): the zygote sets these unless the environment does, so it has one thread to fork.
# Its children keep them (libraries read them once, at load): numpy's BLAS runs one-threaded in a warm job;
# torch's own thread pool is set per job (train.threads).
THREADLESS_ENV = {"OPENBLAS_NUM_THREADS": "1", "JE_ARROW_MALLOC_CONF": "background_thread:false"}


def preload_for(entrypoint: object) -> tuple[str, ...]:
    """The modules a zygote preloads for a sweep's entry point (``"module:function"`` or a callable)."""
    from harness.dispatch.job import TRAIN_ENTRYPOINT

    if entrypoint == TRAIN_ENTRYPOINT:
        return BASE_PRELOAD + TRAIN_PRELOAD
    if isinstance(entrypoint, str):
        return (*BASE_PRELOAD, entrypoint.partition(":")[0])
    return BASE_PRELOAD  # a callable pickled by value (tests): nothing more to know about it


def start_warm(log: Path, entrypoint: object) -> WarmStart:
    """A zygote for local jobs of ``entrypoint``, started; when it does not serve it says why on stderr (its
    ``python`` is then None and the jobs start cold)."""
    warm = WarmStart(log, preload_for(entrypoint))
    if not warm.start():
        print(f"warm start off: {warm.refused}; local jobs start fresh interpreters", file=sys.stderr)
    return warm


class WarmStart:
    """A zygote started for one sweep invocation: ``start()``, then ``python`` for the LocalExecutor, ``stop()``.

    Stopping removes its socket (later jobs, e.g. resubmissions by a rerun, start cold) and lets it exit once its
    running jobs end: a sweep driver that stops leaves its jobs running, as without a warm start.
    """

    def __init__(self, log: Path, preload: Sequence[str]):
        self.log = Path(log)
        self.preload = tuple(preload)
        self.process: subprocess.Popen | None = None
        self.socket: str | None = None
        self.refused: str | None = None  # why it does not serve, when it does not

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout_s: float = 300.0) -> bool:
        """Start the zygote and wait until it serves; False (and ``refused`` says why) when it does not."""
        self.socket = str(Path(tempfile.mkdtemp(prefix="harness-warm-")) / "zygote.sock")  # short: AF_UNIX ≤ 107
        env = {**THREADLESS_ENV, **os.environ}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-u", "-m", "harness.dispatch.warm", "serve", self.socket, *self.preload],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout_s
        while not os.path.exists(self.socket):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.refused = f"the zygote did not start serving (see {self.log})"
                self.stop()
                with contextlib.suppress(OSError):  # its socket folder, empty
                    os.rmdir(os.path.dirname(self.socket))
                return False
            time.sleep(0.05)
        return True

    @property
    def python(self) -> str | None:
        """The LocalExecutor's ``python``: the client in front of the real interpreter; None when not serving."""
        if self.process is None or self.process.poll() is not None or self.socket is None:
            return None
        return " ".join([shlex.quote(sys.executable), "-m harness.dispatch.warm client",
                         shlex.quote(self.socket), "--"])

    def stop(self, wait_s: float = 5.0) -> None:
        """Stop accepting; the zygote exits by itself once its running jobs have ended. Waits ``wait_s`` for that
        (at once when none runs), so a finished sweep reaps it and counts its CPU time."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait_s)


def main(argv: list[str]) -> int:
    usage = ("usage: python -m harness.dispatch.warm serve <socket> [module ...] | "
             "client <socket> -- <python args>")
    if len(argv) >= 3 and argv[0] == "client" and argv[2] == "--":
        from harness.dispatch.warm_client import run

        run(argv[1], argv[3:])  # exits
    if len(argv) >= 2 and argv[0] == "serve":
        from harness.dispatch.zygote import Zygote, ZygoteRefused, preload, run_request

        try:
            preload(argv[2:])
        except ZygoteRefused as exc:
            print(f"zygote refuses to serve: {exc}", flush=True)
            return 3
        request = Zygote(argv[1]).serve()
        if request is None:  # stopped and drained: exit now, without tearing down torch & co. (seconds)
            sys.stdout.flush()
            os._exit(0)
        run_request(request)  # in a forked child: the job
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
