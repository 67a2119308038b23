"""The staff workspace in Telegram: lead cards with buttons, answers to clients from a card,
hand-over from the assistant, shifts and the manager's view — no other app needed.

Staff events arrive from ingest on the route queue (button presses, replies to cards, commands).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from leadflow import clock
from leadflow.adapters.notify import client_channel
from leadflow.adapters.outbound import Outbound
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig
from leadflow.domain.models import (
    CLOSED_STATUSES,
    Channel,
    Contact,
    InboundMessage,
    Lead,
    LeadStatus,
    OutboundMessage,
    StaffEvent,
)
from leadflow.domain.replies import describe_day
from leadflow.observability import logger

TEMPERATURE_LABEL = {"hot": "🔥 горячий", "warm": "🌤 тёплый", "cold": "❄️ холодный"}
SNOOZE_MIN = 60
CARD_LOG_LINES = 5
BUTTONS = frozenset({"acc", "snz", "bk", "nt", "vis", "ns", "bot"})
# What the card's log says a staff member did (staff note ``action`` → words).
ACTION_LOG = {
    "acc": "взят в работу",
    "snz": f"перезвонит через {SNOOZE_MIN} мин",
    "bk": "записан",
    "book": "записан",
    "nt": "не целевой",
    "vis": "клиент пришёл",
    "ns": "клиент не пришёл",
    "bot": "снова отвечает бот",
    "reply": "ответ клиенту",
}
STAFF_COMMAND_HELP = "Команды: /leads, /today, /off [ДД.ММ], /on, /stop."


def card_buttons(lead: Lead) -> list[list[dict]]:
    lid = lead.lead_id
    if lead.status in CLOSED_STATUSES:
        return []
    if lead.status in (LeadStatus.booked, LeadStatus.confirmed):
        rows = [
            [
                {"text": "Пришёл", "callback_data": f"vis:{lid}"},
                {"text": "Не пришёл", "callback_data": f"ns:{lid}"},
            ]
        ]
    else:
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


def phone_for_card(phone: str | None) -> str:
    """International form with the plus (+7…): Telegram turns it into a tap-to-call link, while a
    national «8 913…» is not recognised as a phone everywhere."""
    if not phone:
        return "—"
    import phonenumbers

    try:
        number = phonenumbers.parse(phone, "RU")
    except phonenumbers.NumberParseException:
        return phone
    if not phonenumbers.is_valid_number(number):
        return phone
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _staff_name(business: BusinessConfig, staff_id: str | None) -> str:
    member = business.staff_member(staff_id) if staff_id else None
    return member.name if member else (staff_id or "—")


def card_text(store: Store, business: BusinessConfig, lead: Lead) -> str:
    tz = business.tz
    today = clock.now().astimezone(tz).date()
    service = business.service(lead.service)
    lines = [f"Лид {lead.lead_id} · {TEMPERATURE_LABEL.get(lead.temperature or '', lead.temperature or '')}"]
    lines.append(f"Имя: {lead.contact.name or '—'}")
    lines.append(f"Телефон: {phone_for_card(lead.contact.phone)}")
    lines.append(f"Услуга: {service.name if service else '—'}")
    branch = business.branch(lead.branch)
    if branch:
        lines.append(f"Филиал: {branch.title}")
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
            + (
                f", прежний мастер {_staff_name(business, contact['last_owner'])}"
                if contact.get("last_owner")
                else ""
            )
        )
    history = store.conversation.history(lead.lead_id)
    recent = [m for m in history if m.get("direction") == "in"][-3:]
    if recent:
        lines.append("Последние сообщения:")
        lines.extend(
            f"— {(m.get('text') or '[' + ', '.join(m.get('media', [])) + ']')[:200]}" for m in recent
        )
    if lead.accepted_at:
        lines.append(
            f"✅ Взят: {_staff_name(business, lead.owner)}, {lead.accepted_at.astimezone(tz):%d.%m %H:%M}"
        )
    if lead.appointment_at:
        lines.append(f"📅 Записан на {lead.appointment_at.astimezone(tz):%d.%m %H:%M}")
    if lead.handed_over:
        lines.append("🙋 Отвечает сотрудник, ассистент молчит")
    if lead.status in CLOSED_STATUSES:
        lines.append(f"Статус: {lead.status}")
    log = _action_log(history, business)
    if log:
        lines.append("Журнал:")
        lines.extend(log)
    return "\n".join(lines)


def _action_log(history: list[dict], business: BusinessConfig) -> list[str]:
    """Who did what and when, from the lead's staff notes (the last few)."""
    notes = [m for m in history if m.get("direction") == "staff" and m.get("action") in ACTION_LOG]
    lines = []
    for note in notes[-CARD_LOG_LINES:]:
        at = str(note.get("sk", "")).split("#")[1] if note.get("sk") else ""
        try:
            when = f"{datetime.fromisoformat(at).astimezone(business.tz):%d.%m %H:%M}"
        except ValueError:
            when = ""
        lines.append(f"{when} · {_staff_name(business, note.get('staff_id'))} · {ACTION_LOG[note['action']]}")
    return lines


def send_lead_card(store: Store, outbound: Outbound, business: BusinessConfig, lead: Lead) -> None:
    from leadflow.adapters.notify import staff_chat

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
    """Handles one ``StaffEvent`` at a time; safe to run twice for one event.

    Exactly once per event: a redelivery of a finished event is skipped (the inbox mark); one
    that failed half-way finds the lead's change already made (every change is a no-op when the
    lead is already so) and only finishes what is left — the callback answer, the CRM status, the
    card edit — each an outbound claim keyed by the event, so nothing is edited or sent twice.
    """

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
        # "message" events carry the client-message id that score already marked done.
        if event.action != "message" and self.store.inbox.is_done(event.event_id):
            return
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
        at = event.received_at  # the press's time, the same on every redelivery
        lead = self.store.leads.get(lead_id) if action in BUTTONS else None
        if lead is None:
            self._answer(event, "Лид не найден." if action in BUTTONS else "Эта кнопка больше не работает.")
            return
        if action == "bk" and not (lead.preferred_date and lead.preferred_time) and not lead.appointment_at:
            self._answer(event, "Ответьте на карточку: «запись 20.03 15:00» — и я запишу клиента.")
            return
        applied: list[bool] = []

        def change(current: Lead) -> Lead | None:
            result = _apply_button(current, action, staff_id, at, self.business)
            applied.append(result is not None)
            return result

        lead = self.store.leads.mutate(lead_id, change) or lead
        if applied and applied[-1]:
            self._after_button(lead, action, staff_id, event)
            self._answer(event, f"Готово: {ACTION_LOG[action]}.")
        else:
            self._answer(event, _why_not(lead, action, self.business))
        # Both idempotent, so a retry after a failed card edit repeats them harmlessly.
        self.crm.update_status(lead)
        self._refresh_card(lead, event)

    def _after_button(self, lead: Lead, action: str, staff_id: str, event: StaffEvent) -> None:
        """What follows a change a button made — once, because only the press that made it gets here."""
        lead_id = lead.lead_id
        self.store.conversation.add_staff_note(
            lead_id, event.event_id, event.received_at, staff_id=staff_id, action=action
        )
        if action in ("acc", "bk", "nt", "vis", "ns"):
            self.cancel_timers(lead_id, ("sla",))
        if action == "snz":
            from leadflow.steps.escalate import schedule_sla

            self.cancel_timers(lead_id, ("sla",))
            schedule_sla(
                self.store,
                self.business,
                lead.model_copy(update={"assigned_at": event.received_at + timedelta(minutes=SNOOZE_MIN)}),
                event.received_at,
            )
        if lead.status in CLOSED_STATUSES:
            self.store.contacts.close_lead(lead.contact_id, lead_id)
            if lead.owner:
                self.store.staff.release_lead(lead.owner)
            if lead.status == LeadStatus.visited:
                self._count_visit(lead)
        if action in ("bk", "ns"):
            self.schedule_reminders(lead)

    def _count_visit(self, lead: Lead) -> None:
        contact = self.store.contacts.get(lead.contact_id)
        self.store.contacts.update(lead.contact_id, visits=int(contact.get("visits", 0)) + 1)

    # ------------------------------------------------------------------ replies to cards
    def _lead_of_card(self, event: StaffEvent) -> str | None:
        return self.store.staff.lead_for_card(event.chat_id, event.reply_to_message_id or "")

    def _reply_to_client(self, event: StaffEvent, staff_id: str) -> None:
        lead_id = self._lead_of_card(event)
        if lead_id is None:
            self._answer(event, "Не нашёл лид этой карточки. Ответьте на карточку лида.")
            return
        at = event.received_at
        if event.text.strip().lower() == "/bot":
            self._hand_back(event, staff_id, lead_id)
            return
        booking = (
            parse_staff_datetime(event.text, self.business, at)
            if event.text.lower().startswith("запись")
            else None
        )
        if booking:
            self._book_from_reply(event, staff_id, lead_id, booking)
            return
        current = self.store.leads.get(lead_id)
        if current is None:
            self._answer(event, "Лид не найден.")
            return
        channel, to = client_channel(current)
        if channel == "sms" and not current.contact.phone:
            self._answer(event, "У клиента нет телефона: ответить некуда, свяжитесь с ним сами.")
            return
        lead = self.store.leads.mutate(lead_id, lambda lead: _take_over(lead, at)) or current
        delivery = self.outbound.send(
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
        self.store.conversation.add_staff_note(lead_id, event.event_id, at, staff_id=staff_id, action="reply")
        self.cancel_timers(lead_id, ("sla",))
        if delivery.outcome == "failed":
            self._answer(event, "Не удалось доставить ответ клиенту (канал отказал). Свяжитесь с ним иначе.")
        self.crm.update_status(lead)
        self._refresh_card(lead, event)

    def _book_from_reply(self, event: StaffEvent, staff_id: str, lead_id: str, booking: datetime) -> None:
        at = event.received_at
        applied: list[bool] = []

        def change(current: Lead) -> Lead | None:
            result = _book(current, booking, staff_id, at)
            applied.append(result is not None)
            return result

        lead = self.store.leads.mutate(lead_id, change)
        if lead is None:
            self._answer(event, "Лид не найден.")
            return
        if applied and applied[-1]:
            self.store.conversation.add_staff_note(
                lead_id, event.event_id, at, staff_id=staff_id, action="book"
            )
            self.cancel_timers(lead_id, ("sla",))
            self.schedule_reminders(lead)
        self.crm.update_status(lead)
        self._refresh_card(lead, event)

    def _hand_back(self, event: StaffEvent, staff_id: str, lead_id: str) -> None:
        lead = self.store.leads.mutate(lead_id, lambda current: _set_handover(current, False))
        if lead is None:
            self._answer(event, "Лид не найден.")
            return
        self.store.conversation.add_staff_note(
            lead_id, event.event_id, event.received_at, staff_id=staff_id, action="bot"
        )
        self._answer(event, "Ассистент снова отвечает клиенту.")
        self._refresh_card(lead, event)

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
            self._answer(
                event,
                f"Готово, {_staff_name(self.business, staff_id)}! Сюда будут приходить ваши лиды. "
                + STAFF_COMMAND_HELP,
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
            self._answer(
                event,
                f"Отметил: не на смене до {until.astimezone(self.business.tz):%d.%m %H:%M}. "
                "Новые лиды пойдут коллегам; /on — снова на смене.",
            )
        elif command == "/on":
            self.store.staff.set_off_until(staff_id, None)
            self._answer(event, "Вы снова на смене.")
        elif command == "/leads":
            self._answer(event, self._open_leads_text(staff_id, now))
        elif command == "/today":
            self._answer(event, self._today_text(now))
        elif command == "/bot":
            lead_id = self._lead_of_card(event) if event.reply_to_message_id else None
            if lead_id is None:
                self._answer(event, "Чтобы вернуть лид ассистенту, ответьте /bot на карточку лида.")
                return
            self._hand_back(event, staff_id, lead_id)
        else:
            self._answer(event, STAFF_COMMAND_HELP)

    def _off_until(self, argument: str, now: datetime) -> datetime:
        """Off through today, or through the given day (the next one of that date); back at its end."""
        tz = self.business.tz
        found = re.search(r"(\d{1,2})\.(\d{1,2})", argument)
        today = now.astimezone(tz).date()
        day = today
        if found:
            try:
                day = today.replace(month=int(found.group(2)), day=int(found.group(1)))
            except ValueError:
                day = today
            if day < today:
                day = day.replace(year=today.year + 1)  # «/off 05.01» said in December
        return datetime.combine(day + timedelta(days=1), time(0, 0), tz)

    def _today_text(self, now: datetime) -> str:
        from leadflow.domain.kpi import compute_kpis, today_text

        tz = self.business.tz
        local_today = now.astimezone(tz).date()
        # The index is by UTC day: a local day spans two of them.
        leads = self.store.leads.received_between(local_today - timedelta(days=1), now.date())
        return today_text(
            compute_kpis([x for x in leads if x.received_at.astimezone(tz).date() == local_today])
        )

    def _open_leads_text(self, staff_id: str, now: datetime) -> str:
        """Managers and seniors see every open lead; everybody else their own."""
        member = self.business.staff_member(staff_id)
        sees_all = member is not None and member.role in ("manager", "senior")
        window = self.business.open_lead_window_days
        leads = [
            lead
            for lead in self.store.leads.received_between((now - timedelta(days=window)).date(), now.date())
            if lead.is_open and lead.owner and (sees_all or lead.owner == staff_id)
        ]
        if not leads:
            return "Открытых лидов нет."
        lines = [f"Открытые лиды ({len(leads)}):"]
        for lead in sorted(leads, key=lambda item: item.received_at)[-30:]:
            lines.append(
                f"{lead.lead_id} · {lead.contact.name or '—'} · {lead.service or '—'} · "
                f"{_staff_name(self.business, lead.owner)} · {_sla_state(lead, now)}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ helpers
    def _back_to_client_flow(self, event: StaffEvent) -> None:
        text = event.text if event.action in ("reply", "message") else f"{event.action} {event.text}".strip()
        self.score_queue.send(
            InboundMessage(
                # Not the event's own id: route marks that one done, and score would then skip it.
                message_id=f"{event.event_id}:client",
                channel=Channel.telegram,
                chat_id=event.chat_id,
                contact=Contact(channel_user_id=event.user_id or event.chat_id),
                text=text,
                received_at=event.received_at,
            )
        )

    def _answer(self, event: StaffEvent, text: str) -> None:
        """A button press is answered with a toast on the button; anything else with a message."""
        if event.callback_query_id:
            lead_id = event.action.partition(":")[2] or None
            self.outbound.answer_callback(
                event.event_id, event.chat_id, event.callback_query_id, text, lead_id
            )
            return
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
        """Show who did what: the card is edited in Telegram (recorded as ``card_update`` in the outbox).

        A permanent failure (card deleted, bot blocked) is only recorded: the lead is already right.
        """
        ref = lead.card_ref()
        if ref is None:
            return
        chat, message_id = ref
        current = self.store.leads.get(lead.lead_id) or lead  # the newest state, also on a late retry
        delivery = self.outbound.edit(
            OutboundMessage(
                id=f"card_update:{event.event_id}",
                channel="telegram",
                to=chat,
                lead_id=lead.lead_id,
                kind="card_update",
                text=card_text(self.store, self.business, current),
                buttons=card_buttons(current),
                reply_to_message_id=message_id,
            )
        )
        logger.info(
            "card updated",
            extra={"lead_id": lead.lead_id, "status": current.status, "outcome": delivery.outcome},
        )


def _sla_state(lead: Lead, now: datetime) -> str:
    if lead.accepted_at:
        return "✅ взят"
    if "sla_breached" in lead.tags:
        return "⏰ SLA нарушен"
    waited = int((now - (lead.assigned_at or lead.received_at)).total_seconds() // 60)
    return f"⏳ ждёт {max(waited, 0)} мин"


def _why_not(lead: Lead, action: str, business: BusinessConfig) -> str:
    if lead.status in CLOSED_STATUSES:
        return f"Лид уже закрыт ({lead.status})."
    if action == "acc" and lead.accepted_at:
        return f"Лид уже взял(а) {_staff_name(business, lead.owner)}."
    if action in ("vis", "ns") and lead.status not in (LeadStatus.booked, LeadStatus.confirmed):
        return "Сначала отметьте запись."
    return "Уже отмечено."


def _apply_button(
    lead: Lead, action: str, staff_id: str, now: datetime, business: BusinessConfig
) -> Lead | None:
    """The lead after a button, or None when the button changes nothing (already so, or not allowed)."""
    if lead.status in CLOSED_STATUSES:
        return None
    if action == "acc":
        return _accept(lead, staff_id, now)
    if action == "snz":
        callback_at = now + timedelta(minutes=SNOOZE_MIN)
        if lead.callback_at == callback_at:
            return None
        _accept(lead, staff_id, now)
        lead.callback_at = callback_at
        return lead
    if action == "bk":
        if lead.status in (LeadStatus.booked, LeadStatus.confirmed):
            return None
        if not (lead.preferred_date and lead.preferred_time):
            return None
        hour, minute = (int(p) for p in lead.preferred_time.split(":"))
        return _book(
            lead, datetime.combine(lead.preferred_date, time(hour, minute), business.tz), staff_id, now
        )
    if action == "nt":
        lead.status = LeadStatus.not_target
        return lead
    if action in ("vis", "ns"):
        if lead.status not in (LeadStatus.booked, LeadStatus.confirmed):
            return None
        lead.status = LeadStatus.visited if action == "vis" else LeadStatus.no_show
        return lead
    if action == "bot":
        return _set_handover(lead, False)
    return None


def _accept(lead: Lead, staff_id: str, now: datetime) -> Lead | None:
    if lead.accepted_at:
        return None
    lead.accepted_at = now
    lead.owner = lead.owner or staff_id
    if lead.status in (LeadStatus.new, LeadStatus.qualifying, LeadStatus.assigned):
        lead.status = LeadStatus.accepted
    return lead


def _book(lead: Lead, at: datetime, staff_id: str, now: datetime) -> Lead | None:
    if lead.appointment_at == at and lead.status in (LeadStatus.booked, LeadStatus.confirmed):
        return None
    lead.appointment_at = at
    lead.status = LeadStatus.booked
    lead.accepted_at = lead.accepted_at or now
    lead.owner = lead.owner or staff_id
    return lead


def _take_over(lead: Lead, now: datetime) -> Lead | None:
    if lead.handed_over and lead.accepted_at:
        return None
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
    from leadflow import wiring
    from leadflow.steps.remind import schedule_booking_reminders

    store = wiring.store()
    business = wiring.business()

    def schedule(lead: Lead) -> None:
        schedule_booking_reminders(store, business, lead, clock.now())

    def cancel(lead_id: str, kinds: tuple[str, ...]) -> None:
        for kind in kinds:
            store.timers.cancel(f"{kind}#{lead_id}")

    return Workspace(store, wiring.outbound(), wiring.crm(), business, schedule, cancel, wiring.score_queue())
