"""Fixtures of the local CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# The qualification tests' catalog (tests/unit/domain/qualify/data), the one `leadflow qualify` reads here too.
CATALOG = Path(__file__).resolve().parents[1] / "domain" / "qualify" / "data" / "catalog.yaml"


@pytest.fixture(scope="session")
def catalog_path() -> Path:
    return CATALOG
