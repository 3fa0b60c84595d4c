"""Where the checkout is, whatever folder below tests/ a test module sits in."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
