"""The warm start with real processes: a zygote forks each job; exit codes, requeue and signals reach the job as
they would a fresh interpreter; a dead client takes its job along; without a zygote the job runs cold."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
import submitit

from harness.dispatch.executor import local_executor
from harness.dispatch.warm import BASE_PRELOAD, WarmStart

cloudpickle.register_pickle_by_value(sys.modules[__name__])

PROBE = '''
import json, os, signal, sys, time
signal.signal(signal.SIGUSR2, lambda *_: sys.exit(144))  # submitit's local requeue code
try:
    # The first line says the job is up, its handlers installed: a test's signal may come right after it.
    print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv[1:], "cwd": os.getcwd(),
                      "probe": os.environ.get("PROBE")}), flush=True)
    if sys.argv[1] == "sleep":
        time.sleep(60)
except KeyboardInterrupt:
    open("interrupted", "w").write("yes")
    raise
sys.exit(0 if sys.argv[1] == "sleep" else int(sys.argv[1]))
'''


@pytest.fixture
def warm(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "probe.py").write_text(PROBE)
    zygote = WarmStart(tmp_path / "zygote.log", BASE_PRELOAD)
    assert zygote.start(), zygote.refused
    yield zygote
    zygote.stop()
    zygote.process.wait(timeout=30)


def client(python: str, *args: str, extra_env: dict | None = None) -> subprocess.Popen:
    env = os.environ | {"PROBE": "from-the-client"} | (extra_env or {})
    return subprocess.Popen([*shlex.split(python), "-u", "-m", "probe", *args], stdout=subprocess.PIPE,
                            text=True, env=env)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1][0] != "Z"
    except OSError:
        return False


def first_line(proc: subprocess.Popen) -> dict:
    return json.loads(proc.stdout.readline())


def test_job_is_forked_by_the_zygote_with_the_clients_argv_env_cwd_stdout_and_exit_code(warm, tmp_path):
    proc = client(warm.python, "7")
    seen = first_line(proc)
    assert proc.wait(timeout=30) == 7
    assert seen == {"pid": seen["pid"], "ppid": warm.pid, "argv": ["7"], "cwd": str(tmp_path),
                    "probe": "from-the-client"}
    assert seen["pid"] != proc.pid


def test_usr2_reaches_the_job_and_its_requeue_code_survives(warm):
    proc = client(warm.python, "sleep")
    first_line(proc)
    proc.send_signal(signal.SIGUSR2)
    assert proc.wait(timeout=30) == 144


def test_sigint_to_the_client_interrupts_the_job(warm, tmp_path):
    proc = client(warm.python, "sleep")
    first_line(proc)
    proc.send_signal(signal.SIGINT)  # submitit's cancel
    assert proc.wait(timeout=30) == -signal.SIGINT  # the job died of KeyboardInterrupt, as python does
    assert (tmp_path / "interrupted").read_text() == "yes"


def test_killing_the_client_kills_the_job(warm):
    proc = client(warm.python, "sleep")
    job = first_line(proc)["pid"]
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while alive(job):
        assert time.monotonic() < deadline, "the job outlived its client"
        time.sleep(0.1)


def test_without_a_zygote_the_client_runs_the_job_cold(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "probe.py").write_text(PROBE)
    python = f"{shlex.quote(sys.executable)} -m harness.dispatch.warm client {tmp_path / 'none.sock'} --"
    proc = client(python, "5")
    seen = first_line(proc)
    assert proc.wait(timeout=60) == 5
    assert seen["pid"] == proc.pid and seen["ppid"] == os.getpid()  # exec'd in place: the client became python


def test_a_stopped_zygote_lets_its_running_job_finish_and_new_jobs_start_cold(warm):
    python = warm.python
    proc = client(python, "sleep")
    first_line(proc)
    warm.stop()
    deadline = time.monotonic() + 20
    while os.path.exists(warm.socket):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    later = client(python, "3")  # the zygote still runs (its job does), but its socket is gone: cold
    seen = first_line(later)
    assert later.wait(timeout=60) == 3 and seen["ppid"] == os.getpid()
    assert warm.process.poll() is None
    proc.send_signal(signal.SIGUSR2)
    assert proc.wait(timeout=30) == 144  # still reported through the stopping zygote
    assert warm.process.wait(timeout=30) == 0


def test_zygote_refuses_to_serve_when_an_import_starts_a_thread(tmp_path, monkeypatch):
    (tmp_path / "threaded.py").write_text("import threading, time\n"
                                          "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    zygote = WarmStart(tmp_path / "zygote.log", ("threaded",))
    assert not zygote.start()
    assert zygote.python is None
    assert "importing threaded started threads" in (tmp_path / "zygote.log").read_text()


class Requeued(submitit.helpers.Checkpointable):
    """First attempt: waits for the time-limit signal (USR2), which requeues it; second: returns its parent."""

    def __init__(self, marker: str):
        self.marker = marker

    def __call__(self) -> int:
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            time.sleep(60)
        return os.getppid()


def test_submitit_local_job_requeues_through_the_zygote(warm, tmp_path):
    executor = local_executor(tmp_path / "submitit", timeout_min=1, python=warm.python)
    executor.update_parameters(signal_delay_s=55)  # the controller sends USR2 after 5 s
    job = executor.submit(Requeued(str(tmp_path / "first-attempt")))
    assert job.result() == warm.pid  # the second attempt, forked by the zygote too
    assert "Requeued job" in job.stderr() + job.stdout()
