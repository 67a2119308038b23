"""What the LLM adapter tests share: the catalog they ask about and the moment the messages came."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from leadflow.business import Service

TZ = ZoneInfo("Asia/Krasnoyarsk")
# Thursday 12 March 2026, 09:55 local time
RECEIVED = datetime(2026, 3, 12, 9, 55, tzinfo=TZ)

SERVICES = [
    Service(id="haircut_women", name="Женская стрижка", keywords=["стрижка", "каре"]),
    Service(id="manicure", name="Маникюр (без покрытия)", keywords=["маникюр", "ногти"]),
    Service(id="massage", name="Массаж", keywords=["массаж", "массаж спины"]),
    Service(id="dental_treatment", name="Лечение зубов", keywords=["кариес", "пломба"]),
    Service(id="tire_change", name="Шиномонтаж", keywords=["шиномонтаж", "резина"]),
]
