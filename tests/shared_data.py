"""Where the public data beside the repository lives (``../shared``, or ``$ALIASGATE_SHARED``).

Tests read it in place (never copied into the repo) and skip when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ALIASGATE_SHARED", ROOT.parent / "shared"))
XSTEST = SHARED / "datasets" / "xstest" / "xstest_prompts.csv"
BBQ_DIR = SHARED / "datasets" / "bbq"

needs_xstest = pytest.mark.skipif(
    not XSTEST.is_file(),
    reason=f"XSTest CSV not found at {XSTEST} (set ALIASGATE_SHARED to the shared/ directory)",
)
