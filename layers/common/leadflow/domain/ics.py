"""A booking as an iCalendar file (RFC 5545): the «добавить в календарь» link of a confirmation.

One VEVENT per lead (a lead is one visit: a cancel or a loss gets a new lead), so its UID is the
lead's — a moved booking is the same event at a new time with a higher SEQUENCE, and a calendar
that imports it again updates it instead of adding a second one; a cancelled visit is the same
event as a CANCEL. No ORGANIZER: the stack has no calendar address of its own to name, so strict
iTIP processors may take the file as a plain import (Apple Calendar and Thunderbird honour
STATUS:CANCELLED on re-import; Google Calendar's file import ignores METHOD). Times are UTC ("Z"), so no VTIMEZONE is needed.

Hand-written rather than a library: the whole format used here is one event of six text
properties, and its three rules (escaping, CRLF, folding at 75 octets) are tested below.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadflow.business import BusinessConfig
from leadflow.domain.booking_words import visit_place
from leadflow.domain.models import Lead, LeadStatus
from leadflow.domain.schedule import bookable_duration
from leadflow.domain.wording import service_name

DEFAULT_DURATION_MIN = 60  # a service without a duration still gets an event of an hour
FOLD_OCTETS = 75
PRODID = "-//leadflow//booking//RU"


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon and comma escaped, newlines as \\n."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def fold(line: str) -> str:
    """A content line folded into lines of at most 75 octets (RFC 5545 3.1): every continuation
    starts with one space, and a UTF-8 character is never split between two lines."""
    out: list[str] = []
    current, size = "", 0
    limit = FOLD_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            out.append(current)
            current, size = " ", 1  # the continuation's leading space counts toward its 75
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


CANCELLED_STATUSES = frozenset({LeadStatus.cancelled, LeadStatus.lost})


def booking_calendar(lead: Lead, business: BusinessConfig, now: datetime) -> str | None:
    """The VCALENDAR of the lead's booking; None when there is no visit to put in a calendar.

    A cancelled (or lost) visit is answered with the same event as an iTIP CANCEL (RFC 5546
    3.2.5: METHOD:CANCEL, the same UID, a SEQUENCE above the last one published) with
    STATUS:CANCELLED, so a calendar that imported the visit removes or strikes it out."""
    if lead.appointment_at is None:
        return None
    cancelled = lead.status in CANCELLED_STATUSES
    sequence = lead.calendar_sequence + (1 if cancelled else 0)
    service = business.service(lead.service)
    duration = bookable_duration(service)
    start = lead.appointment_at
    end = start + timedelta(minutes=duration or DEFAULT_DURATION_MIN)
    what = (
        service_name(service, lead.language) if service else ("Визит" if lead.language != "en" else "Visit")
    )
    address, directions = visit_place(business, lead, lead.booked_master)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:CANCEL" if cancelled else "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{escape_text(lead.lead_id)}@leadflow",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART:{_utc(start)}",
        f"DTEND:{_utc(end)}",
        f"SUMMARY:{escape_text(f'{what} — {business.name}')}",
    ]
    if address:
        lines.append(f"LOCATION:{escape_text(address)}")
    if directions:
        lines.append(f"DESCRIPTION:{escape_text(directions)}")
    lines += ["STATUS:CANCELLED" if cancelled else "STATUS:CONFIRMED", "END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + "\r\n" for line in lines)
