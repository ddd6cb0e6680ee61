"""The test tree imports in pytest's default ``prepend`` mode, where two test files with one basename collide."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parent


def test_test_file_basenames_are_unique():
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
