"""``models`` imports nothing from ``harness`` (the layout rule of README.md), checked on the source of every module."""

import ast
from pathlib import Path

import models


def test_models_never_import_harness():
    offenders = []
    for path in Path(models.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in {"harness", "analysis"}]
    assert offenders == []
