"""The `harness` command as a user runs it: a real subprocess of the installed console script."""

import subprocess
import sys

import yaml

COMMANDS = ("sweep", "status", "train", "tune", "report", "advise", "eval", "predict", "ui", "data", "config")


def harness(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def test_help_lists_every_command_with_a_description():
    out = harness("--help")
    assert out.returncode == 0, out.stderr
    for name in COMMANDS:
        line = next((l for l in out.stdout.splitlines() if l.strip("│ ").startswith(name + " ")), None)
        assert line is not None, f"{name} missing from --help"
        assert len(line.strip("│ ").split()) > 3, f"{name} has no help text"


def test_config_validate_ok_and_typo(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"name": "t", "model": {"preset": "base", "miniature": True}}))
    out = harness("config", "validate", str(good))
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": {"preset": "base", "c_zz": 64}}))
    out = harness("config", "validate", str(bad))
    assert out.returncode == 2
    lines = [l for l in out.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, out.stderr
    assert "model.c_zz: unknown key" in lines[0] and str(bad) in lines[0]
    assert "Traceback" not in out.stderr


def test_config_show_fills_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"preset": "large"}}))
    out = harness("config", "show", str(path))
    assert out.returncode == 0, out.stderr
    shown = yaml.safe_load(out.stdout)
    assert shown["model"]["c_z"] == 512
    assert shown["train"]["betas"] == [0.9, 0.95]
    assert shown["train"]["grad_clip"] == 10.0
