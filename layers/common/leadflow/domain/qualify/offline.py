"""The offline qualifier: rules, a lemmatised keyword index and pymorphy3, no network.

Field meanings follow ``shared/samples/qualify/LABELING.md``. Import is cheap: pymorphy3 and
phonenumbers load on the first message, and one `Catalog` (the keyword index) is built per
service list and cached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from leadflow.domain.models import Intent, Qualification, Temperature
from leadflow.domain.qualify import lexicon

if TYPE_CHECKING:
    from leadflow.business import Service
from leadflow.domain.qualify.dates import extract_date
from leadflow.domain.qualify.intent import detect_intent
from leadflow.domain.qualify.morphology import morph
from leadflow.domain.qualify.names import extract_name
from leadflow.domain.qualify.phones import extract_phone
from leadflow.domain.qualify.services import Catalog, match_service
from leadflow.domain.qualify.text import any_of, prepare
from leadflow.domain.qualify.times import extract_time


def qualify_offline(
    text: str,
    received_at: datetime,
    services: Sequence[Service],
    *,
    tz: ZoneInfo,
    channel: str = "",
) -> Qualification:
    """Qualify one message by rules; ``received_at`` must be timezone-aware."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    today = received_at.astimezone(tz).date()
    channel = (channel or "").lower()
    message = prepare(text, channel)
    catalog = Catalog.of(services)
    service = match_service(message, catalog)
    preferred_date = extract_date(message, today)
    preferred_time = extract_time(message)
    phone = extract_phone(text, channel)
    name = extract_name(message)
    intent = detect_intent(message, service, bool(preferred_date or preferred_time), bool(phone or name))
    urgent = any_of(lexicon.URGENT_PATTERNS, message.norm)
    if intent == Intent.not_target:
        service, preferred_date, preferred_time = None, None, None
        urgent = False
    if intent == Intent.booking:
        near = preferred_date is not None and 0 <= (preferred_date - today).days <= 2
        temperature = Temperature.hot if near or urgent else Temperature.warm
    else:
        temperature = Temperature.cold
        urgent = False
    return Qualification(
        intent=intent,
        temperature=temperature,
        service=service,
        preferred_date=preferred_date,
        preferred_time=preferred_time,
        name=name,
        phone=phone,
        urgent=urgent,
        engine="offline",
    )


def warm_up(services: Iterable[Service] = ()) -> None:
    """Load the morphology dictionaries and phonenumbers now (for a Lambda init phase)."""
    import phonenumbers  # noqa: F401

    morph()
    services = tuple(services)
    if services:
        Catalog.of(services)
