"""Screenshot the first page `harness ui` prints, for recorded runs and their report, in headless Chromium.

The runs are real run folders (by default the quickstart's width_vs_depth runs committed under
``tests/analysis/data/runs``), sent into a fresh sqlite store by `harness tracking sync` exactly as after an
outage; `harness report --log-mlflow` adds the report run; `harness ui` serves the store and prints the URL.

    python scripts/mlflow_ui_screenshot.py docs/images/mlflow_runs.png [--runs-dir /tmp/ui-store]

``tests/analysis/browser/test_mlflow_ui.py`` drives the same steps with a few runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "analysis" / "data" / "runs" / "width_vs_depth"
# Flags that work in a container (no sandbox, no GPU, nothing reaching the network).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
WINDOW = (1600, 900)  # px


def chromium_exe() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(url: str, profile: Path, screenshot: Path | None = None, window: tuple[int, int] = WINDOW) -> str:
    """Load ``url`` in a ``window`` (width, height px) with a fresh profile (a first visit); return the rendered
    DOM, or write a PNG screenshot to ``screenshot`` and return ''. The runs table renders only the columns in
    the window, so the DOM holds what the screenshot shows."""
    shutil.rmtree(profile, ignore_errors=True)
    out = f"--screenshot={screenshot}" if screenshot else "--dump-dom"
    cmd = [chromium_exe(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
           f"--window-size={window[0]},{window[1]}", out, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def record_runs(folders: list[Path], runs_dir: Path) -> str:
    """Copy run folders to ``<runs_dir>/folders/<sweep>/`` without their MLflow ids and send them with
    `harness tracking sync` into ``sqlite:///<runs_dir>/mlflow.db`` (experiment: their config's). Returns the URI."""
    from typer.testing import CliRunner

    from harness.cli import app
    from harness.tracking.store import default_uri

    uri = default_uri(runs_dir)
    for folder in folders:
        copy = runs_dir / "folders" / folder.parent.name / folder.name
        shutil.copytree(folder, copy)
        state = json.loads((copy / "state.json").read_text())
        for key in ("mlflow_run_id", "experiment_id", "tracking_uri"):
            state.pop(key, None)
        (copy / "state.json").write_text(json.dumps(state))
    result = CliRunner().invoke(app, ["tracking", "sync", str(runs_dir / "folders"), "--tracking-uri", uri])
    if result.exit_code != 0:
        raise RuntimeError(f"harness tracking sync failed:\n{result.output}")
    return uri


def log_report(uri: str, sweep: str, out: Path) -> str:
    """`harness report SWEEP --log-mlflow` over the store; returns its output."""
    from typer.testing import CliRunner

    from harness.cli import app

    result = CliRunner().invoke(app, ["report", sweep, "--tracking-uri", uri, "--log-mlflow", "--plot", "scaling",
                                      "--bootstrap", "5", "--out", str(out)])
    if result.exit_code != 0:
        raise RuntimeError(f"harness report failed:\n{result.output}")
    return result.output


@contextmanager
def harness_ui(runs_dir: Path, timeout_s: float = 180.0) -> Iterator[str]:
    """Run `harness ui` on the store of ``runs_dir`` (any free port); yields the URL it prints."""
    proc = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--runs-dir", str(runs_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError(f"harness ui exited: {proc.stderr.read()}")
            if line.startswith("http"):
                yield line.strip()
                return
        raise TimeoutError(f"harness ui printed no URL within {timeout_s:.0f} s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its handler stops the MLflow server (in a session of its own)
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("png", type=Path, help="screenshot to write")
    parser.add_argument("--runs", type=Path, nargs="*", help="run folders (default: the width_vs_depth fixture)")
    parser.add_argument("--sweep", default="width_vs_depth", help="sweep the report is of")
    parser.add_argument("--runs-dir", type=Path, help="store to create (default: a temporary folder)")
    args = parser.parse_args()
    if chromium_exe() is None:
        sys.exit("chromium not installed (apt-get install -y chromium)")
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="harness-ui-"))
    uri = record_runs(args.runs or sorted(p for p in FIXTURE.iterdir() if (p / "state.json").is_file()), runs_dir)
    log_report(uri, args.sweep, runs_dir / "report")
    with harness_ui(runs_dir) as url:
        print(url)
        args.png.parent.mkdir(parents=True, exist_ok=True)
        chromium(url, runs_dir / "chromium-profile", screenshot=args.png.resolve())
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
