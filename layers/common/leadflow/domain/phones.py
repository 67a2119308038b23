"""Phone numbers, one way: everything leadflow stores or compares is E.164 (``+79131234567``).

People and platforms write numbers in many ways: «8 913 123-45-67», «+7 (913) 123 45 67»,
«79131234567» (WhatsApp and Telegram send international digits without the plus), «0049…».
``to_e164`` reads all of them. The phonenumbers package is imported on first use: a cold start
that never sees a phone does not pay for its metadata.
"""

from __future__ import annotations

from typing import Any


def _parse(candidate: str, region: str | None) -> Any | None:
    import phonenumbers

    try:
        return phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None


def to_e164(
    raw: str | None, *, region: str | None = "RU", strict: bool = True, platform: bool = False
) -> str | None:
    """E.164 for a phone as written, else None (never raises).

    ``region``: how to read a number written without a country code (Russia by default; None
    reads only international numbers). ``strict``: the number must be valid for its country,
    not merely of a possible length. ``platform``: the digits come from a platform that sends
    international numbers without the plus (WhatsApp's wa_id, a Telegram contact, an SMS
    sender), so «79131234567» is +7…, while a person typing «88005553535» means 8-800.
    """
    if not raw:
        return None
    import phonenumbers

    text = raw.strip()[:40]
    digits = "".join(ch for ch in text if ch.isdigit())
    if text.startswith("00"):
        candidates = ["+" + text[2:]]
    elif text.startswith("+"):
        candidates = [text]
    elif platform and digits == text:
        candidates = ["+" + digits, text]
    else:
        candidates = [text]
    for candidate in candidates:
        number = _parse(candidate, None if candidate.startswith("+") else region)
        if number is None:
            continue
        ok = phonenumbers.is_valid_number(number) if strict else phonenumbers.is_possible_number(number)
        if ok:
            return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return None


def russian_client_number(e164: str | None) -> str | None:
    """The number when it is one a Russian client would leave (a mobile or city line, not a
    placeholder such as 1111111111), else None. Qualifying a message accepts only these."""
    if not e164 or not e164.startswith("+7") or len(e164) != 12:
        return None
    national = e164[2:]
    if national[0] not in "3489" or len(set(national[3:])) == 1:
        return None
    return e164


def e164_or_raw(raw: str) -> str:
    """For display: the international form (Telegram turns ``+7…`` into a tap-to-call link), or
    the number as written when it cannot be read."""
    return to_e164(raw) or raw
