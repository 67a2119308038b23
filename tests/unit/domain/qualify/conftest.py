from __future__ import annotations

from pathlib import Path

import pytest

from leadflow.business import BusinessConfig, load_business_config

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def catalog_path() -> Path:
    return DATA / "catalog.yaml"


@pytest.fixture(scope="session")
def business(catalog_path: Path) -> BusinessConfig:
    return load_business_config(catalog_path)
