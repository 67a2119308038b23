"""The staff workspace in Telegram: lead cards with buttons, answers to clients from a card,
hand-over from the assistant, shifts and the manager's view — no other app needed.

Staff events arrive from ingest on the route queue (button presses, replies to cards, commands).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from leadflow import clock
from leadflow.config import BusinessConfig
from leadflow.models import (
    CLOSED_STATUSES,
    Channel,
    Contact,
    InboundMessage,
    Lead,
    LeadStatus,
    OutboundMessage,
    StaffEvent,
)
from leadflow.observability import logger
from leadflow.outbound import Outbound
from leadflow.replies import describe_day
from leadflow.store import Store

TEMPERATURE_LABEL = {"hot": "🔥 горячий", "warm": "🌤 тёплый", "cold": "❄️ холодный"}
SNOOZE_MIN = 60


def client_channel(lead: Lead) -> tuple[str, str]:
    """Where a message to the client goes: its own channel, or SMS for calls and forms."""
    if lead.channel in ("call", "form"):
        return "sms", lead.contact.phone or lead.chat_id
    return lead.channel, lead.chat_id


def card_buttons(lead: Lead) -> list[list[dict]]:
    lid = lead.lead_id
    if lead.status in CLOSED_STATUSES:
        return []
    if lead.status in (LeadStatus.booked, LeadStatus.confirmed):
        return [
            [
                {"text": "Пришёл", "callback_data": f"vis:{lid}"},
                {"text": "Не пришёл", "callback_data": f"ns:{lid}"},
            ]
        ]
    rows = [
        [
            {"text": "Записан", "callback_data": f"bk:{lid}"},
            {"text": "Не целевой", "callback_data": f"nt:{lid}"},
        ],
    ]
    if not lead.accepted_at:
        rows.insert(
            0,
            [
                {"text": "Беру", "callback_data": f"acc:{lid}"},
                {"text": "Перезвоню позже", "callback_data": f"snz:{lid}"},
            ],
        )
    if lead.handed_over:
        rows.append([{"text": "Вернуть боту", "callback_data": f"bot:{lid}"}])
    return rows


def card_text(store: Store, business: BusinessConfig, lead: Lead) -> str:
    tz = business.tz
    today = clock.now().astimezone(tz).date()
    service = business.service(lead.service)
    lines = [f"Лид {lead.lead_id} · {TEMPERATURE_LABEL.get(lead.temperature or '', lead.temperature or '')}"]
    lines.append(f"Имя: {lead.contact.name or '—'}")
    lines.append(f"Телефон: {lead.contact.phone or '—'}")
    lines.append(f"Услуга: {service.name if service else '—'}")
    when = describe_day(lead.preferred_date, today) if lead.preferred_date else ""
    when = f"{when} {lead.preferred_time or ''}".strip()
    lines.append(f"Когда: {when or '—'}")
    source = lead.source or lead.utm.source
    utm = " / ".join(v for v in (lead.utm.medium, lead.utm.campaign) if v)
    lines.append(
        f"Канал: {lead.channel}" + (f" · источник: {source}" if source else "") + (f" ({utm})" if utm else "")
    )
    if lead.promo:
        lines.append(f"Промокод: {lead.promo}")
    if lead.callback_at:
        lines.append(f"Перезвонить: {lead.callback_at.astimezone(tz):%d.%m %H:%M}")
    contact = store.contacts.get(lead.contact_id)
    if int(contact.get("leads", 0)) > 1 or contact.get("visits"):
        lines.append(
            f"Повторный клиент: обращений {contact.get('leads', 0)}, визитов {contact.get('visits', 0)}"
            + (f", прежний мастер {contact['last_owner']}" if contact.get("last_owner") else "")
        )
    recent = [m for m in store.conversation.history(lead.lead_id) if m.get("direction") == "in"][-3:]
    if recent:
        lines.append("Последние сообщения:")
        lines.extend(
            f"— {(m.get('text') or '[' + ', '.join(m.get('media', [])) + ']')[:200]}" for m in recent
        )
    if lead.accepted_at:
        lines.append(f"✅ Взял {lead.owner} в {lead.accepted_at.astimezone(tz):%H:%M}")
    if lead.appointment_at:
        lines.append(f"📅 Записан на {lead.appointment_at.astimezone(tz):%d.%m %H:%M}")
    if lead.status in CLOSED_STATUSES:
        lines.append(f"Статус: {lead.status}")
    return "\n".join(lines)


def send_lead_card(store: Store, outbound: Outbound, business: BusinessConfig, lead: Lead) -> None:
    from leadflow.sla import staff_chat

    if not lead.owner:
        return
    chat = staff_chat(store, business, lead.owner)
    delivery = outbound.send(
        OutboundMessage(
            id=f"card:{lead.lead_id}:{lead.owner}",
            channel="telegram",
            to=chat,
            lead_id=lead.lead_id,
            kind="lead_card",
            text=card_text(store, business, lead),
            buttons=card_buttons(lead),
        )
    )
    if delivery.provider_message_id:
        store.staff.remember_card(chat, delivery.provider_message_id, lead.lead_id)
        ref = f"{chat}:{delivery.provider_message_id}"
        store.leads.mutate(lead.lead_id, lambda current: _set_card(current, ref))


def _set_card(lead: Lead, ref: str) -> Lead | None:
    if lead.card == ref:
        return None
    lead.card = ref
    return lead


_BOOK_AT = re.compile(r"(\d{1,2})[./](\d{1,2})(?:[./](\d{2,4}))?\s+(\d{1,2})[:.](\d{2})")


def parse_staff_datetime(text: str, business: BusinessConfig, now: datetime) -> datetime | None:
    """«20.03 15:00» or «20.03.2027 15:00» in the business time zone; the next such date."""
    found = _BOOK_AT.search(text)
    if not found:
        return None
    day, month, year, hour, minute = found.groups()
    local_now = now.astimezone(business.tz)
    y = int(year) + (2000 if year and len(year) == 2 else 0) if year else local_now.year
    try:
        at = datetime(y, int(month), int(day), int(hour), int(minute), tzinfo=business.tz)
    except ValueError:
        return None
    if not year and at < local_now - timedelta(days=1):
        at = at.replace(year=y + 1)
    return at


class Workspace:
    def __init__(
        self,
        store: Store,
        outbound: Outbound,
        crm,
        business: BusinessConfig,
        schedule_reminders,
        cancel_timers,
        score_queue,
    ):
        self.score_queue = score_queue  # client messages that looked like staff traffic go back there
        self.store = store
        self.outbound = outbound
        self.crm = crm
        self.business = business
        self.schedule_reminders = schedule_reminders  # callable(lead) after booking / no-show
        self.cancel_timers = cancel_timers  # callable(lead_id, kinds)

    # ------------------------------------------------------------------ entry point
    def handle(self, event: StaffEvent) -> None:
        action, _, argument = event.action.partition(":")
        staff_id = self.store.staff.staff_for_chat(event.chat_id)
        if staff_id is None and action in (
            "reply",
            "message",
            "/stop",
            "/on",
            "/off",
            "/leads",
            "/today",
            "/bot",
        ):
            self._back_to_client_flow(event)  # a client quoting our answer, or typing a command
            return
        if action.startswith("/"):
            self._command(event, action, event.text.strip())
            return
        if staff_id is None:
            self._answer(event, "Сначала подключитесь по ссылке-приглашению от администратора.")
            return
        if action == "reply":
            self._reply_to_client(event, staff_id)
        elif action == "message":
            self._answer(event, "Чтобы ответить клиенту, ответьте (reply) на карточку лида.")
        else:
            self._button(event, staff_id, action, argument)

    # ------------------------------------------------------------------ buttons
    def _button(self, event: StaffEvent, staff_id: str, action: str, lead_id: str) -> None:
        now = clock.now()
        lead = self.store.leads.get(lead_id)
        if lead is None:
            self._answer(event, "Лид не найден.")
            return
        if action == "bk" and not (lead.preferred_date and lead.preferred_time):
            self._answer(event, "Ответьте на карточку: «запись 20.03 15:00» — и я запишу клиента.")
            return
        changed = self.store.leads.mutate(
            lead_id, lambda current: _apply_button(current, action, staff_id, now, self.business)
        )
        if changed is None:
            return
        self.store.conversation.add_staff_note(lead_id, event.event_id, now, staff_id=staff_id, action=action)
        if action in ("acc", "bk", "nt", "vis", "ns") and changed.accepted_at:
            self.cancel_timers(lead_id, ("sla",))
        if action == "snz":
            from leadflow.sla import schedule_sla

            self.cancel_timers(lead_id, ("sla",))
            schedule_sla(
                self.store,
                self.business,
                changed.model_copy(update={"assigned_at": now + timedelta(minutes=SNOOZE_MIN)}),
                now,
            )
        if changed.status in CLOSED_STATUSES:
            self.store.contacts.close_lead(changed.contact_id, lead_id)
            if changed.owner:
                self.store.staff.release_lead(changed.owner)
            if changed.status == LeadStatus.visited:
                self._count_visit(changed)
        if action in ("bk", "ns"):
            self.schedule_reminders(changed)
        self.crm.update_status(changed)
        self._refresh_card(changed, event)

    def _count_visit(self, lead: Lead) -> None:
        contact = self.store.contacts.get(lead.contact_id)
        self.store.contacts.update(lead.contact_id, visits=int(contact.get("visits", 0)) + 1)

    # ------------------------------------------------------------------ replies to cards
    def _reply_to_client(self, event: StaffEvent, staff_id: str) -> None:
        lead_id = self.store.staff.lead_for_card(event.chat_id, event.reply_to_message_id or "")
        if lead_id is None:
            self._answer(event, "Не нашёл лид этой карточки. Ответьте на карточку лида.")
            return
        now = clock.now()
        booking = (
            parse_staff_datetime(event.text, self.business, now)
            if event.text.lower().startswith("запись")
            else None
        )
        if booking:
            lead = self.store.leads.mutate(lead_id, lambda current: _book(current, booking, staff_id, now))
            if lead:
                self.cancel_timers(lead_id, ("sla",))
                self.schedule_reminders(lead)
                self.crm.update_status(lead)
                self._refresh_card(lead, event)
            return
        if event.text.strip().lower() == "/bot":
            lead = self.store.leads.mutate(lead_id, lambda current: _set_handover(current, False))
            self._answer(event, "Ассистент снова отвечает клиенту.")
            return
        lead = self.store.leads.mutate(lead_id, lambda current: _take_over(current, staff_id, now))
        if lead is None:
            return
        channel, to = client_channel(lead)
        self.outbound.send(
            OutboundMessage(
                id=f"staff_reply:{event.event_id}",
                channel=channel,
                to=to,
                lead_id=lead_id,
                kind="staff_reply",
                text=event.text,
                business_connection_id=lead.business_connection_id,
            )
        )
        self.store.conversation.add_staff_note(
            lead_id, event.event_id, now, staff_id=staff_id, action="reply"
        )
        self.cancel_timers(lead_id, ("sla",))

    # ------------------------------------------------------------------ commands
    def _command(self, event: StaffEvent, command: str, argument: str) -> None:
        now = clock.now()
        if command == "/start":
            code = argument.removeprefix("inv-")
            staff_id = self.store.staff.redeem_invite(code, now) if code else None
            if staff_id is None:
                self._answer(event, "Ссылка-приглашение недействительна или уже использована.")
                return
            self.store.staff.connect_chat(staff_id, event.chat_id)
            member = self.business.staff_member(staff_id)
            self._answer(
                event, f"Готово, {member.name if member else staff_id}! Сюда будут приходить ваши лиды."
            )
            return
        staff_id = self.store.staff.staff_for_chat(event.chat_id)
        if staff_id is None:
            self._answer(event, "Сначала подключитесь по ссылке-приглашению от администратора.")
            return
        if command == "/stop":
            self.store.staff.disconnect_chat(staff_id, event.chat_id)
            self._answer(event, "Отключено. Лиды сюда больше не придут.")
        elif command == "/off":
            until = self._off_until(argument, now)
            self.store.staff.set_off_until(staff_id, until)
            self._answer(event, f"Отметил: не на смене до {until.astimezone(self.business.tz):%d.%m %H:%M}.")
        elif command == "/on":
            self.store.staff.set_off_until(staff_id, None)
            self._answer(event, "Вы снова на смене.")
        elif command == "/leads":
            self._answer(event, self._open_leads_text(now))
        elif command == "/today":
            from leadflow.kpi import compute_kpis, today_text

            local_today = now.astimezone(self.business.tz).date()
            leads = list(self.store.leads.received_between(local_today - timedelta(days=1), now.date()))
            self._answer(
                event,
                today_text(
                    compute_kpis(
                        [
                            lead
                            for lead in leads
                            if lead.received_at.astimezone(self.business.tz).date() == local_today
                        ]
                    )
                ),
            )
        elif command == "/bot":
            self._answer(event, "Чтобы вернуть лид ассистенту, ответьте /bot на карточку лида.")
        else:
            self._answer(event, "Команды: /leads, /today, /off [ДД.ММ], /on, /stop.")

    def _off_until(self, argument: str, now: datetime) -> datetime:
        tz = self.business.tz
        found = re.search(r"(\d{1,2})\.(\d{1,2})", argument)
        local = now.astimezone(tz)
        day = local.date()
        if found:
            try:
                day = local.date().replace(month=int(found.group(2)), day=int(found.group(1)))
            except ValueError:
                day = local.date()
        return datetime.combine(day + timedelta(days=1), time(0, 0), tz)

    def _open_leads_text(self, now: datetime) -> str:
        window = self.business.open_lead_window_days
        leads = [
            lead
            for lead in self.store.leads.received_between((now - timedelta(days=window)).date(), now.date())
            if lead.is_open and lead.owner
        ]
        if not leads:
            return "Открытых лидов нет."
        lines = [f"Открытые лиды ({len(leads)}):"]
        for lead in sorted(leads, key=lambda item: item.received_at)[-30:]:
            sla = (
                "✅ взят"
                if lead.accepted_at
                else ("⏰ SLA нарушен" if "sla_breached" in lead.tags else "⏳ ждёт")
            )
            lines.append(
                f"{lead.lead_id} · {lead.contact.name or '—'} · {lead.service or '—'} · {lead.owner} · {sla}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ helpers
    def _back_to_client_flow(self, event: StaffEvent) -> None:
        text = event.text if event.action in ("reply", "message") else f"{event.action} {event.text}".strip()
        self.score_queue.send(
            InboundMessage(
                message_id=event.event_id,
                channel=Channel.telegram,
                chat_id=event.chat_id,
                contact=Contact(channel_user_id=event.user_id or event.chat_id),
                text=text,
                received_at=event.received_at,
            )
        )

    def _answer(self, event: StaffEvent, text: str) -> None:
        self.outbound.send(
            OutboundMessage(
                id=f"answer:{event.event_id}",
                channel="telegram",
                to=event.chat_id,
                kind="staff_answer",
                text=text,
            )
        )

    def _refresh_card(self, lead: Lead, event: StaffEvent) -> None:
        """Show who did what: the card is sent anew in the outbox, edited in Telegram."""
        if not lead.card:
            return
        chat, _, message_id = lead.card.partition(":")
        self.outbound.send(
            OutboundMessage(
                id=f"card_update:{event.event_id}",
                channel="telegram",
                to=chat,
                lead_id=lead.lead_id,
                kind="card_update",
                text=card_text(self.store, self.business, lead),
                buttons=card_buttons(lead),
                reply_to_message_id=message_id,
            )
        )
        logger.info("card updated", extra={"lead_id": lead.lead_id, "status": lead.status})


def _apply_button(
    lead: Lead, action: str, staff_id: str, now: datetime, business: BusinessConfig
) -> Lead | None:
    if lead.status in CLOSED_STATUSES and action not in ("vis", "ns"):
        return None
    if action in ("acc", "snz", "bk") and not lead.accepted_at:
        lead.accepted_at = now
        lead.owner = lead.owner or staff_id
        if lead.status in (LeadStatus.new, LeadStatus.qualifying, LeadStatus.assigned):
            lead.status = LeadStatus.accepted
    if action == "snz":
        lead.callback_at = now + timedelta(minutes=SNOOZE_MIN)
    elif action == "bk" and lead.preferred_date and lead.preferred_time:
        hour, minute = (int(p) for p in lead.preferred_time.split(":"))
        return _book(
            lead, datetime.combine(lead.preferred_date, time(hour, minute), business.tz), staff_id, now
        )
    elif action == "nt":
        lead.status = LeadStatus.not_target
    elif action == "vis":
        lead.status = LeadStatus.visited
    elif action == "ns":
        lead.status = LeadStatus.no_show
    elif action == "bot":
        lead.handed_over = False
    elif action != "acc":
        return None
    return lead


def _book(lead: Lead, at: datetime, staff_id: str, now: datetime) -> Lead:
    lead.appointment_at = at
    lead.status = LeadStatus.booked
    lead.accepted_at = lead.accepted_at or now
    lead.owner = lead.owner or staff_id
    return lead


def _take_over(lead: Lead, staff_id: str, now: datetime) -> Lead:
    lead.handed_over = True
    lead.accepted_at = lead.accepted_at or now
    if lead.status in (LeadStatus.new, LeadStatus.qualifying, LeadStatus.assigned):
        lead.status = LeadStatus.accepted
    return lead


def _set_handover(lead: Lead, value: bool) -> Lead | None:
    if lead.handed_over == value:
        return None
    lead.handed_over = value
    return lead


def staff_workspace() -> Workspace:
    """The workspace wired to the running function's store, outbound, CRM and config."""
    from leadflow import runtime
    from leadflow.reminders import schedule_booking_reminders

    store = runtime.store()
    business = runtime.business()

    def schedule(lead: Lead) -> None:
        schedule_booking_reminders(store, business, lead, clock.now())

    def cancel(lead_id: str, kinds: tuple[str, ...]) -> None:
        for kind in kinds:
            store.timers.cancel(f"{kind}#{lead_id}")

    return Workspace(
        store, runtime.outbound(), runtime.crm(), business, schedule, cancel, runtime.score_queue()
    )
