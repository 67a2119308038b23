"""SMS rules that need no network: segment maths (GSM-7 / UCS-2), fitting a text into one part,
opt-out words («СТОП»), and the sending policy (opt-out, marketing consent, quiet hours)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

# --------------------------------------------------------------------------- segments

# GSM 03.38 default alphabet (without the escape code 0x1B) and its extension table; an
# extension character is sent as escape + character, so it costs two septets.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_MULTI = 160, 153  # septets; a concatenated part loses 7 to its header
UCS2_SINGLE, UCS2_MULTI = 70, 67  # UTF-16 code units


@dataclass(frozen=True)
class SegmentInfo:
    encoding: Literal["GSM-7", "UCS-2"]
    segments: int
    chars_per_segment: int
    units: int = 0  # septets (GSM-7) or UTF-16 code units (UCS-2) in the whole text


def _gsm7_units(text: str) -> list[int] | None:
    units = []
    for char in text:
        if char in GSM7_BASIC:
            units.append(1)
        elif char in GSM7_EXTENSION:
            units.append(2)
        else:
            return None
    return units


def _pack(units: list[int], capacity: int) -> int:
    """Parts needed when a character (escape pair, surrogate pair) is never split across parts."""
    parts, used = 1, 0
    for size in units:
        if used + size > capacity:
            parts, used = parts + 1, 0
        used += size
    return parts


def count_segments(text: str) -> SegmentInfo:
    """How many SMS parts ``text`` takes, exactly as a handset or SMSC splits it.

    GSM-7 when every character is in the default alphabet or its extension table (extension
    characters count 2), else UCS-2 where a character outside the BMP (emoji) is a surrogate
    pair of 2 units. One part holds 160 septets / 70 units; a longer text is cut into parts of
    153 / 67 and a 2-unit character never straddles two parts. An empty text is one (empty) part.
    """
    gsm = _gsm7_units(text)
    if gsm is not None:
        total = sum(gsm)
        if total <= GSM7_SINGLE:
            return SegmentInfo("GSM-7", 1, GSM7_SINGLE, total)
        return SegmentInfo("GSM-7", _pack(gsm, GSM7_MULTI), GSM7_MULTI, total)
    ucs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    total = sum(ucs)
    if total <= UCS2_SINGLE:
        return SegmentInfo("UCS-2", 1, UCS2_SINGLE, total)
    return SegmentInfo("UCS-2", _pack(ucs, UCS2_MULTI), UCS2_MULTI, total)


# Typographic characters a template may contain that have a plain GSM-7 equivalent.
_GSM_LOOKALIKES = str.maketrans(
    {
        "«": '"',
        "»": '"',
        "„": '"',
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "—": "-",
        "–": "-",
        "…": "...",
        "\u00a0": " ",
        "\t": " ",
    }
)


def fit_one_segment(text: str) -> str:
    """Shorten a text (a reminder whose template allows it) so that it is sent as one SMS part.

    The rule, in order, stopping as soon as the text fits one part:
    1. the text as it is;
    2. collapsed whitespace (runs of spaces and line breaks become one space);
    3. typographic quotes, dashes, ellipsis and no-break spaces replaced by their GSM-7
       equivalents — only when that makes the whole text GSM-7 (160 instead of 70 characters);
    4. cut at the last word boundary that fits (or inside the word when the boundary would
       lose more than half the room) and end with an ellipsis: ``…`` in UCS-2, ``...`` in GSM-7.
    """
    if count_segments(text).segments == 1:
        return text
    text = " ".join(text.split())
    if count_segments(text).segments == 1:
        return text
    plain = text.translate(_GSM_LOOKALIKES)
    if _gsm7_units(plain) is not None:
        text = plain
        if count_segments(text).segments == 1:
            return text
    info = count_segments(text)
    ellipsis = "..." if info.encoding == "GSM-7" else "…"
    budget = (GSM7_SINGLE if info.encoding == "GSM-7" else UCS2_SINGLE) - count_segments(ellipsis).units
    used, cut = 0, 0
    for index, char in enumerate(text):
        size = count_segments(char).units
        if used + size > budget:
            break
        used += size
        cut = index + 1
    head = text[:cut]
    boundary = head.rfind(" ")
    if boundary >= cut // 2:
        head = head[:boundary]
    return head.rstrip(" ,;:-—–") + ellipsis


# --------------------------------------------------------------------------- opt-out

# Whole-message intent: after dropping politeness and filler words, every word left must be
# part of an opt-out phrase. «Стоп, а сколько стоит стрижка?» keeps «а сколько стоит стрижка»
# and is therefore not an opt-out; «СТОП!!!», «Не пишите мне больше, спасибо» are.
# «Отмена» / «cancel» are deliberately absent: clients use them to cancel an appointment.
_OPT_OUT_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(p.split())
            for p in (
                "стоп",
                "stop",
                "stopall",
                "stop all",
                "unsubscribe",
                "opt out",
                "optout",
                "отписаться",
                "отписка",
                "отпишите",
                "отпиши",
                "хочу отписаться",
                "не пишите",
                "не присылайте",
                "не отправляйте",
                "не беспокойте",
                "не надо писать",
                "хватит писать",
                "хватит присылать",
                "хватит",
                "удалите номер",
                "удалите из рассылки",
                "do not text",
                "dont text",
                "don t text",
            )
        ),
        key=len,
        reverse=True,
    )
)
_FILLER = frozenset(
    {
        "пожалуйста",
        "плиз",
        "мне",
        "меня",
        "мой",
        "больше",
        "спасибо",
        "сюда",
        "смс",
        "sms",
        "сообщения",
        "сообщений",
        "рассылку",
        "рассылки",
        "эти",
        "этот",
        "от",
        "вас",
        "нам",
        "уже",
        "все",
        "please",
        "me",
        "my",
        "thanks",
        "thank",
        "you",
        "to",
        "from",
        "messages",
        "the",
        "any",
        "more",
    }
)
_WORD = re.compile(r"[^\W_]+")


def is_opt_out(text: str) -> bool:
    """True when the whole message asks to stop receiving SMS (case and punctuation ignored)."""
    words = [w for w in _WORD.findall(text.lower().replace("ё", "е")) if w not in _FILLER]
    if not words:
        return False
    position = 0
    while position < len(words):
        for phrase in _OPT_OUT_PHRASES:
            if tuple(words[position : position + len(phrase)]) == phrase:
                position += len(phrase)
                break
        else:
            return False
    return True


# --------------------------------------------------------------------------- policy

# Transactional: the client's own request or appointment. Marketing needs prior consent
# (advertising by phone/SMS requires the recipient's consent, 38-ФЗ art. 18). A "nudge" (T+1/T+3
# follow-up to a lead that did not book) is counted as marketing: it promotes a sale the client
# did not ask to be reminded of, and a wrongly sent nudge costs more than a missed one.
TRANSACTIONAL_KINDS = frozenset({"reply", "reminder", "missed_call", "staff_reply"})
MARKETING_KINDS = frozenset({"winback", "nurture", "nudge"})
STAFF_KINDS = frozenset({"staff_reply"})  # typed by a person: never held back by the automatic budgets


@dataclass(frozen=True)
class PolicyDecision:
    action: Literal["send", "wait", "refuse"]
    send_at: datetime | None
    reason: str


def _quiet_until(now_local: datetime, quiet_start: time, quiet_end: time) -> datetime | None:
    """End of the quiet window that contains ``now_local``; None when outside it (or no window)."""
    if quiet_start == quiet_end:
        return None
    clock = now_local.time().replace(tzinfo=None)
    today = now_local.date()
    if quiet_start < quiet_end:  # e.g. 13:00-15:00 within one day
        if quiet_start <= clock < quiet_end:
            return datetime.combine(today, quiet_end, tzinfo=now_local.tzinfo)
        return None
    if clock >= quiet_start:  # evening part of a window that crosses midnight
        return datetime.combine(today + timedelta(days=1), quiet_end, tzinfo=now_local.tzinfo)
    if clock < quiet_end:  # morning part
        return datetime.combine(today, quiet_end, tzinfo=now_local.tzinfo)
    return None


def sms_policy(
    kind: str,
    *,
    opted_out: bool,
    marketing_consent: bool,
    now_local: datetime,
    quiet_start: time,
    quiet_end: time,
) -> PolicyDecision:
    """Whether to send an SMS of ``kind`` now, later (``send_at``) or never.

    An opt-out refuses everything. Transactional kinds go out at once, quiet hours included:
    a reply or missed-call text answers something the client did a moment ago, and a reminder's
    time is chosen by the reminder plan. Marketing kinds need consent and wait for the end of the
    quiet window (which may cross midnight). Unknown kinds are refused so that a new kind is
    classified on purpose, not by accident.
    """
    if opted_out:
        return PolicyDecision("refuse", None, "opted out")
    if kind in TRANSACTIONAL_KINDS:
        return PolicyDecision("send", now_local, "transactional")
    if kind not in MARKETING_KINDS:
        return PolicyDecision("refuse", None, f"unknown sms kind {kind!r}")
    if not marketing_consent:
        return PolicyDecision("refuse", None, "no marketing consent")
    until = _quiet_until(now_local, quiet_start, quiet_end)
    if until is not None:
        return PolicyDecision("wait", until, "quiet hours")
    return PolicyDecision("send", now_local, "marketing with consent")


def sms_country(e164: str) -> str | None:
    """The ISO country of a number (``+7 913…`` → ``RU``), None when it is not a number."""
    import phonenumbers

    try:
        number = phonenumbers.parse(e164 if e164.startswith("+") else "+" + e164, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(number)
