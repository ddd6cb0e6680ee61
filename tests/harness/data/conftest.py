"""Shared fixtures: the bundled starter set prepared once per session into a temporary cache."""

from __future__ import annotations

import pytest

from harness.data.cache import prepare
from harness.data.starter import starter_dir, starter_splits


@pytest.fixture(scope="session")
def starter_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache") / "starter"
    report = prepare(starter_dir(), cache, msa_dir=starter_dir() / "msas", splits=starter_splits())
    assert report.rejects == []
    return cache


@pytest.fixture(scope="session")
def structures():
    return starter_dir() / "structures"
