"""The lead card a staff member sees in Telegram: its text, its buttons, and the log of who did what.

Button presses come back as ``<action>:<lead id>`` (Telegram's callback data). Cards sent before
this version carry short codes (``acc:``, ``snz:``…); ``parse_button`` still understands them, so
a card already in a chat keeps working.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from enum import StrEnum

from leadflow.business import BusinessConfig
from leadflow.domain.knowledge import describe_services, lead_services
from leadflow.domain.models import CLOSED_STATUSES, Attachment, ContactRecord, Lead, LeadStatus
from leadflow.domain.phones import e164_or_raw
from leadflow.domain.replies import time_has_passed
from leadflow.domain.wording import describe_when

TEMPERATURE_LABEL = {"hot": "🔥 горячий", "warm": "🌤 тёплый", "cold": "❄️ холодный"}
CHANNEL_LABEL = {
    "telegram": "Telegram",
    "whatsapp": "WhatsApp",
    "instagram": "Instagram",
    "vk": "ВКонтакте",
    "form": "заявка с сайта",
    "call": "звонок",
    "sms": "SMS",
}
BUILDER_LABEL = {"manychat": "ManyChat", "chatfuel": "Chatfuel"}
STATUS_LABEL = {
    "new": "новый",
    "qualifying": "уточняем",
    "assigned": "назначен",
    "accepted": "в работе",
    "booked": "записан",
    "confirmed": "визит подтверждён",
    "visited": "клиент пришёл",
    "no_show": "клиент не пришёл",
    "cancelled": "запись отменена",
    "lost": "потерян",
    "not_target": "не целевой",
}
ATTACHMENT_LABEL = {
    "photo": "📷 Фото",
    "voice": "🎤 Голосовое",
    "video": "🎬 Видео",
    "video_note": "🎬 Видеосообщение",
    "audio": "🎵 Аудио",
    "document": "📎 Файл",
    "sticker": "Стикер",
    "share": "🔗 Публикация",
    "reel": "🎬 Reels",
    "story": "📖 История",
    "wall_post": "🔗 Запись",
    "link": "🔗 Ссылка",
    "unsupported": "📎 Сообщение",
}
LINK_KINDS = frozenset({"share", "reel", "story", "wall_post", "link"})  # posts and links, not files
WHERE = {"telegram": "в Telegram", "whatsapp": "в WhatsApp", "instagram": "в Instagram", "vk": "во ВКонтакте"}
PROBLEM_NOTE = {
    "too_big": "файл слишком большой, посмотрите {where}",
    "unsupported": "такое здесь не показать, посмотрите {where}",
    "unavailable": "файл не удалось получить, посмотрите {where}",
}
SNOOZE_MIN = 60
CARD_HEAD = re.compile(r"^Лид (\S+)")  # a card's first line names its lead: «Лид L1a2b3c4d5e6f · …»
CARD_LOG_LINES = 5


class Button(StrEnum):
    accept = "accept"
    snooze = "snooze"
    book = "book"
    not_target = "not_target"
    visited = "visited"
    no_show = "no_show"
    back_to_bot = "bot"
    transfer = "transfer"


# Codes on cards sent by earlier versions.
LEGACY_CODES = {
    "acc": Button.accept,
    "snz": Button.snooze,
    "bk": Button.book,
    "nt": Button.not_target,
    "vis": Button.visited,
    "ns": Button.no_show,
}
# What the card's log says a staff member did (staff note ``action`` → words).
ACTION_LOG: dict[str, str] = {
    Button.accept: "взят в работу",
    Button.snooze: f"перезвонит через {SNOOZE_MIN} мин",
    Button.book: "записан",
    Button.not_target: "не целевой",
    Button.visited: "клиент пришёл",
    Button.no_show: "клиент не пришёл",
    Button.back_to_bot: "снова отвечает бот",
    Button.transfer: "передан коллеге",
    "reply": "ответ клиенту",
}


def parse_button(data: str) -> tuple[Button, str, str] | None:
    """``accept:L123`` → (Button.accept, "L123", ""); ``transfer:L123:anna`` → (…, "anna"); else None."""
    code, _, rest = data.partition(":")
    lead_id, _, argument = rest.partition(":")
    button = LEGACY_CODES.get(code) or (Button(code) if code in Button._value2member_map_ else None)
    if button is None or not lead_id:
        return None
    return button, lead_id, argument


def button(text: str, action: Button, lead_id: str, argument: str = "") -> dict:
    return {"text": text, "callback_data": f"{action}:{lead_id}" + (f":{argument}" if argument else "")}


def card_details_key(lead: Lead) -> str:
    """What the client said that the card and the CRM record show, as a short key: when it changes
    after the lead was routed (a hot lead's phone that follows), both are brought up to date."""
    shown = (
        lead.contact.name,
        lead.contact.phone,
        lead.service,
        tuple(lead.services),
        lead.preferred_date,
        lead.preferred_time,
        lead.preferred_window,
        lead.branch,
        lead.master,
    )
    return hashlib.sha256(repr(shown).encode()).hexdigest()[:16]


def card_buttons(lead: Lead) -> list[list[dict]]:
    lid = lead.lead_id
    if lead.status in CLOSED_STATUSES:
        return []
    if lead.status in (LeadStatus.booked, LeadStatus.confirmed):
        rows = [[button("Пришёл", Button.visited, lid), button("Не пришёл", Button.no_show, lid)]]
    else:
        rows = [[button("Записан", Button.book, lid), button("Не целевой", Button.not_target, lid)]]
        if not lead.accepted_at:
            rows.insert(
                0, [button("Беру", Button.accept, lid), button("Перезвоню позже", Button.snooze, lid)]
            )
    last = [button("Передать", Button.transfer, lid)]
    if lead.handed_over:
        last.append(button("Вернуть боту", Button.back_to_bot, lid))
    rows.append(last)
    return rows


def staff_name(business: BusinessConfig, staff_id: str | None) -> str:
    member = business.staff_member(staff_id) if staff_id else None
    return member.name if member else (staff_id or "—")


MEDIA_WORDS = {
    "photo": "фото",
    "video": "видео",
    "voice": "голосовое",
    "audio": "аудио",
    "document": "файл",
    "sticker": "стикер",
    "location": "геолокация",
    "contact": "контакт",
}


def _said(message: dict) -> str:
    """An inbound message in words: its text, what it carried, or that it was a missed call."""
    if message.get("text"):
        return str(message["text"])[:200]
    if message.get("media"):
        return "[" + ", ".join(MEDIA_WORDS.get(m, m) for m in message["media"]) + "]"
    return "📞 Пропущенный звонок" if message.get("channel") == "call" else ""


def card_text(
    business: BusinessConfig, lead: Lead, contact: ContactRecord, history: list[dict], today: date
) -> str:
    tz = business.tz
    services = lead_services(lead, business)
    lines = [f"Лид {lead.lead_id} · {TEMPERATURE_LABEL.get(lead.temperature or '', '')}".rstrip(" ·")]
    lines.append(f"Имя: {lead.contact.name or '—'}")
    lines.append(f"Телефон: {e164_or_raw(lead.contact.phone) if lead.contact.phone else '—'}")
    if len(services) > 1:
        lines.append(f"Услуги: {describe_services(services)}")
    else:
        lines.append(f"Услуга: {services[0].name if services else '—'}")
    branch = business.branch(lead.branch)
    if branch:
        lines.append(f"Филиал: {branch.title}")
    lines.append(f"Когда: {card_when(lead, business, today) or '—'}")
    if lead.language == "en":
        lines.append("Язык: английский — клиенту отвечаем по-английски")
    if lead.question:
        lines.append(f"❓ Ждёт ответа администратора: «{lead.question}»")
    source = lead.source or lead.utm.source
    utm = " / ".join(v for v in (lead.utm.medium, lead.utm.campaign) if v)
    channel = CHANNEL_LABEL.get(lead.channel, lead.channel)
    if lead.builder is not None:  # a chatbot's form: answered in the builder's chat
        via = CHANNEL_LABEL.get(lead.builder.channel or "", lead.builder.channel or "")
        channel = BUILDER_LABEL.get(lead.builder.name, lead.builder.name) + (f" ({via})" if via else "")
    shown_source = source if source and source != lead.channel else None
    lines.append(
        f"Канал: {channel}"
        + (f" · источник: {shown_source}" if shown_source else "")
        + (f" ({utm})" if utm else "")
    )
    if lead.promo:
        lines.append(f"Промокод: {lead.promo}")
    if lead.owner:
        lines.append(f"Ведёт: {staff_name(business, lead.owner)}")
    if lead.crm_error:
        lines.append(f"⚠️ CRM не приняла лид: {lead.crm_error[:200]}")
    if lead.possible_match:
        lines.append("⚠️ Этот номер уже есть у клиента из другого канала — возможно, это тот же человек.")
    if lead.callback_at:
        lines.append(f"Перезвонить: {lead.callback_at.astimezone(tz):%d.%m %H:%M}")
    if contact.leads > 1 or contact.visits:
        lines.append(
            f"Повторный клиент: обращений {contact.leads}, визитов {contact.visits}"
            + (f", прежний мастер {staff_name(business, contact.last_owner)}" if contact.last_owner else "")
        )
    recent = (
        lead.recent_texts
        or [  # leads written before the lead kept its last texts
            said
            for said in (_said(m) for m in [m for m in history if m.get("direction") == "in"][-3:])
            if said
        ]
    )
    if recent:
        lines.append("Последние сообщения:")
        lines.extend(f"— {text}" for text in recent)
    lines.extend(attachment_lines(lead))
    if lead.accepted_at:
        lines.append(
            f"✅ Взят: {staff_name(business, lead.owner)}, {lead.accepted_at.astimezone(tz):%d.%m %H:%M}"
        )
    if lead.master:
        lines.append(f"Просит мастера: {staff_name(business, lead.master)}" + _named_master_note(lead))
    if lead.appointment_at:
        master = f" · мастер {staff_name(business, lead.booked_master)}" if lead.booked_master else ""
        lines.append(f"📅 Записан на {lead.appointment_at.astimezone(tz):%d.%m %H:%M}{master}")
    if lead.paid_at:
        lines.append(
            "💳 Предоплата: оплачено" + (f" ({_paid(lead.paid_amount)})" if lead.paid_amount else "")
        )
    elif lead.appointment_at and business.booking.prepayment_url and lead.status not in CLOSED_STATUSES:
        lines.append("💳 Предоплата: не оплачено")
    if lead.handed_over:
        lines.append("🙋 Отвечает сотрудник, ассистент молчит")
    if lead.status in CLOSED_STATUSES:
        lines.append(f"Статус: {STATUS_LABEL.get(lead.status, lead.status)}")
    log = action_log(history, business)
    if log:
        lines.append("Журнал:")
        lines.extend(log)
    return "\n".join(lines)


NAMED_MASTER_REASONS = [
    (re.compile(r"not on shift on (\d{4})-(\d{2})-(\d{2})"), lambda m: f"не работает {m[3]}.{m[2]}"),
    (re.compile(r"does not do this service"), lambda m: "не делает эту услугу"),
    (re.compile(r"at capacity"), lambda m: "занята другими лидами"),
    (re.compile(r"\boff\b|not working here now"), lambda m: "не на работе"),
]


def _named_master_note(lead: Lead) -> str:
    """« — не работает 03.12, лид у другого мастера»: why the client's master does not own the lead."""
    if not lead.owner or lead.owner == lead.master:
        return ""
    reason = lead.assignment_reason or ""
    for pattern, said in NAMED_MASTER_REASONS:
        found = (
            pattern.search(reason.split("client asked for", 1)[-1]) if "client asked for" in reason else None
        )
        if found:
            return f" — {said(found)}, лид у другого мастера"
    return ""


def attachment_text(lead: Lead, attachment: Attachment) -> str:
    """What goes with a client's file under the card: who sent it and their words; for a file that
    cannot be shown here, where to look instead."""
    label = ATTACHMENT_LABEL.get(attachment.kind, "📎 Вложение")
    head = f"{label} · {lead.contact.name or 'клиент'}"
    if _link_only(attachment):  # a shared post or link: its address is all there is to show
        return f"{head}: " + (f"{attachment.caption} — " if attachment.caption else "") + str(attachment.link)
    if attachment.problem:
        where = WHERE.get(lead.channel, "в переписке с клиентом")
        note = PROBLEM_NOTE[attachment.problem].format(where=where)
        return f"{head}: {note}" + (f" — {attachment.link}" if attachment.link else "")
    if attachment.transcript:
        return f"{head}: «{attachment.transcript}»"
    return f"{head}: {attachment.caption}" if attachment.caption else head


def attachment_lines(lead: Lead) -> list[str]:
    """The card's word on the client's files: what came (the files follow under the card), and a
    note for each that cannot be shown in Telegram."""
    if not lead.attachments:
        return []
    kinds = [ATTACHMENT_LABEL.get(a.kind, "📎 Вложение").split(" ", 1)[-1].lower() for a in lead.attachments]
    counted = [
        f"{kind} ×{kinds.count(kind)}" if kinds.count(kind) > 1 else kind for kind in dict.fromkeys(kinds)
    ]
    lines = [f"Вложения: {', '.join(counted)} (под карточкой)"]
    for attachment in lead.attachments:
        if _link_only(attachment):
            lines.append(attachment_text(lead, attachment))
        elif attachment.problem:
            lines.append("⚠️ " + attachment_text(lead, attachment))
    return lines


def _link_only(attachment: Attachment) -> bool:
    return attachment.kind in LINK_KINDS and bool(attachment.link)


def card_when(lead: Lead, business: BusinessConfig, today: date) -> str:
    """«завтра, 15 марта, после 18:00»: always with the date, so the card names the same day as the
    reply did (which counted from the day the message was written); «завтра» only while the card is
    read on that day. A time already past when the client wrote is marked."""
    if not (lead.preferred_date or lead.preferred_time or lead.preferred_window):
        return ""
    written = lead.last_message_at.astimezone(business.tz).date()
    when = describe_when(
        lead.preferred_date, lead.preferred_time, lead.preferred_window,
        today if today == written else None, with_date=True,
    )  # fmt: skip
    return when + (" (уже прошло)" if time_has_passed(lead, business.tz) else "")


def action_log(history: list[dict], business: BusinessConfig) -> list[str]:
    """Who did what and when, from the lead's staff notes (the last few)."""
    notes = [m for m in history if m.get("direction") == "staff" and _logged(m.get("action")) in ACTION_LOG]
    lines = []
    for note in notes[-CARD_LOG_LINES:]:
        at = str(note.get("sk", "")).split("#")[1] if note.get("sk") else ""
        try:
            when = f"{datetime.fromisoformat(at.replace('Z', '+00:00')).astimezone(business.tz):%d.%m %H:%M}"
        except ValueError:
            when = ""
        lines.append(
            f"{when} · {staff_name(business, note.get('staff_id'))} · {ACTION_LOG[_logged(note['action'])]}"
        )
    return lines


def lead_label(business: BusinessConfig, lead: Lead) -> str:
    """One line naming a lead in a reminder or an escalation."""
    service = business.service(lead.service)
    who = lead.contact.name or "клиент"
    temperature = TEMPERATURE_LABEL.get(lead.temperature or "", "")
    channel = CHANNEL_LABEL.get(lead.channel, lead.channel)
    return f"{who}, {service.name if service else 'услуга не указана'} ({channel}{', ' + temperature if temperature else ''})"


def _logged(action: str | None) -> str:
    """A staff note's action; notes written by earlier versions carry the short codes."""
    return str(LEGACY_CODES.get(action or "", action or ""))


def _paid(amount: str) -> str:
    """«4500.00 RUB» → «4 500 ₽»; anything else as it came."""
    value, _, currency = amount.partition(" ")
    try:
        number = float(value)
    except ValueError:
        return amount
    said = f"{number:,.2f}".replace(",", "\u202f").removesuffix(".00")
    return f"{said}\u00a0₽" if currency in ("RUB", "") else f"{said} {currency}"
