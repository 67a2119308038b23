"""The 35 labelled sample cases as a regression: per-field accuracy floors, not per-case perfection."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from leadflow.business import BusinessConfig
from leadflow.domain.qualify.offline import qualify_offline

SAMPLE = Path(__file__).resolve().parent / "data" / "sample.jsonl"
FLOORS = {
    "intent": 0.9,
    "temperature": 0.9,
    "service": 0.9,
    "preferred_date": 0.9,
    "preferred_time": 0.9,
    "phone": 0.97,
    "name": 0.85,
}


def test_sample_accuracy_per_field(business: BusinessConfig) -> None:
    cases = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(cases) == 35
    hits = dict.fromkeys(FLOORS, 0)
    for case in cases:
        got = qualify_offline(
            case["text"],
            datetime.fromisoformat(case["received_at"]),
            business.services,
            tz=business.tz,
            channel=case["channel"],
        ).model_dump(mode="json")
        for field in FLOORS:
            hits[field] += got[field] == case["expect"][field]
    accuracy = {field: hits[field] / len(cases) for field in FLOORS}
    below = {field: f"{value:.0%}" for field, value in accuracy.items() if value < FLOORS[field]}
    assert not below, f"below the floor: {below}"


def test_catalog_index_is_built_once_per_service_list(business: BusinessConfig) -> None:
    from leadflow.domain.qualify.services import Catalog

    assert Catalog.of(business.services) is Catalog.of(list(business.services))
