"""Shared by the deployment tests (image, compose, chart): the repository root,
the tools' cached paths, and the API tests' helpers (ports, bodies, waiting)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SUBREG_CACHE", Path.home() / ".cache" / "subreg"))
sys.path.insert(0, str(ROOT / "tests" / "api"))

import helpers  # noqa: E402  (tests/api/helpers.py)
from helpers import wait_until  # noqa: E402
from ports import free_port  # noqa: E402

__all__ = ["ROOT", "CACHE", "helpers", "wait_until", "free_port"]
