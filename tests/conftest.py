"""Shared fixtures: real archives in temporary directories, the shared sample data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"sample data folder {SHARED_DATA} is absent (it ships beside the repo in CI)")
    return SHARED_DATA


@pytest.fixture
def archive_root(tmp_path) -> Path:
    return tmp_path / "archive"


def python_env() -> dict:
    """Environment for child Python processes that import mdcsql from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


PYTHON = sys.executable
