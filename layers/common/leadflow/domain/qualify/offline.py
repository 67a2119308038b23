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
from leadflow.domain.qualify.dates import find_date
from leadflow.domain.qualify.intent import detect_intent
from leadflow.domain.qualify.morphology import morph
from leadflow.domain.qualify.names import extract_name
from leadflow.domain.qualify.phones import extract_phone
from leadflow.domain.qualify.services import Catalog, find_services
from leadflow.domain.qualify.text import Message, any_of, clause_at, prepare
from leadflow.domain.qualify.times import find_time
from leadflow.domain.qualify.windows import find_window


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
    mentions = find_services(message, catalog)
    wanted = list(dict.fromkeys(service for service, _ in mentions))
    service = wanted[0] if wanted else None
    found_date, found_time, found_window = find_date(message, today), find_time(message), find_window(message)
    preferred_date = found_date[0] if found_date else None
    preferred_time = found_time[0] if found_time else None
    preferred_window = found_window[0] if found_window else None
    phone = extract_phone(text, channel)
    name = extract_name(message)
    when_at = [found[1] for found in (found_date, found_time, found_window) if found]
    intent = detect_intent(
        message, service, bool(when_at), bool(phone or name), _slot_request(message, mentions, when_at)
    )
    urgent = any_of(lexicon.URGENT_PATTERNS, message.norm)
    if intent == Intent.not_target:
        service, wanted, preferred_date, preferred_time, preferred_window = None, [], None, None, None
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
        services=wanted,
        preferred_date=preferred_date,
        preferred_time=preferred_time,
        preferred_window=preferred_window,
        name=name,
        phone=phone,
        urgent=urgent,
        engine="offline",
    )


def _slot_request(message: Message, mentions: list[tuple[str, int]], when_at: list[int]) -> bool:
    """A clause that names a service and a day or time and asks no question."""
    if not mentions or not when_at:
        return False
    shared = {clause for _, clause in mentions} & {clause_at(message.tokens, at) for at in when_at}
    for clause in shared:
        words = [t for t in message.tokens if t.clause == clause]
        text = message.norm[words[0].start : words[-1].start + len(words[-1].text)]
        if not any_of(lexicon.QUESTION_PATTERNS, text):
            return True
    return False


def warm_up(services: Iterable[Service] = ()) -> None:
    """Load the morphology dictionaries and phonenumbers now (for a Lambda init phase)."""
    import phonenumbers  # noqa: F401

    morph()
    services = tuple(services)
    if services:
        Catalog.of(services)
