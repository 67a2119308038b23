"""The staff workspace in Telegram: buttons on lead cards, answers to clients from a card,
hand-over from the assistant, shifts, the manager's view, onboarding — no other app needed.

Staff events arrive from ingest on the route queue (ingest has already told staff chats from
client chats). Exactly once per event: a redelivery of a finished event is skipped (the inbox
mark); one that failed half-way finds the lead's change already made (every lifecycle change is a
no-op when the lead is already so) and only finishes what is left — the callback answer, the CRM
status, the card edit — each an outbound claim keyed by the event, so nothing is sent twice.

Who may do what: the lead's owner acts on it; seniors and the business owner on every lead;
a manager on the leads of their branch; anybody from the lead's branch may take a lead nobody
has taken yet («Беру» makes them its owner). Everybody else hears whose lead it is.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from leadflow import clock, failpoints
from leadflow.adapters.booking import BookingSystem
from leadflow.adapters.crm import Crm
from leadflow.adapters.messenger import Messenger
from leadflow.adapters.store import Store
from leadflow.business import BusinessConfig, StaffMember
from leadflow.domain import lifecycle
from leadflow.domain.cards import ACTION_LOG, CARD_HEAD, SNOOZE_MIN, Button, button, parse_button, staff_name
from leadflow.domain.kpi import compute_kpis, today_text
from leadflow.domain.models import CLOSED_STATUSES, Lead, OutboundMessage, StaffEvent
from leadflow.domain.rules import works_in
from leadflow.observability import logger
from leadflow.steps.booking import Bookings
from leadflow.steps.cards import Cards
from leadflow.steps.leads import LeadChanges

STAFF_COMMAND_HELP = "Команды: /leads, /today, /off [ДД.ММ], /on, /stop, /panel, /help."
STAFF_HELP = (
    "Лиды приходят сюда карточками с кнопками.\n"
    "Ответить клиенту — ответьте (reply) на карточку лида, ассистент после этого молчит; "
    "/bot в ответ на карточку вернёт клиента ассистенту.\n"
    "/leads — ваши открытые лиды\n"
    "/today — сводка за сегодня\n"
    "/off [ДД.ММ] — не на смене (до даты), новые лиды пойдут коллегам; /on — снова на смене\n"
    "/stop — отключить этот чат\n"
    "/panel — ссылка для входа в панель в браузере"
)
NOT_CONNECTED = "Сначала подключитесь по ссылке-приглашению от администратора."
# Lifecycle changes behind the buttons that change a lead's status.
BUTTON_CHANGES = {
    Button.not_target: lifecycle.mark_not_target,
    Button.visited: lambda lead: lifecycle.mark_visit(lead, came=True),
    Button.no_show: lambda lead: lifecycle.mark_visit(lead, came=False),
    Button.back_to_bot: lifecycle.hand_back,
}
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


def may_act(member: StaffMember | None, lead: Lead) -> bool:
    """The lead's owner; a senior or the business owner; a manager of the lead's branch."""
    if member is None:
        return False
    if lead.owner == member.id or member.role in ("senior", "owner"):
        return True
    return member.role == "manager" and works_in(member, lead.branch)


def may_take(member: StaffMember | None, lead: Lead) -> bool:
    """«Беру»: who may act on it, and anybody of the lead's branch while nobody has taken it."""
    if may_act(member, lead):
        return True
    return member is not None and member.active and not lead.accepted_at and works_in(member, lead.branch)


class Workspace:
    def __init__(
        self,
        store: Store,
        messenger: Messenger,
        crm: Crm,
        business: BusinessConfig,
        panel_base_url: str | None = None,
        booking: BookingSystem | None = None,
    ):
        self.panel_base_url = panel_base_url  # PUBLIC_BASE_URL: where `/panel` links point
        self.store = store
        self.messenger = messenger
        self.crm = crm
        self.business = business
        self.leads = LeadChanges(store, business)
        self.cards = Cards(store, messenger, business)
        self.bookings = Bookings(store, messenger, business, booking, panel_base_url)

    # ------------------------------------------------------------------ entry point
    def handle(self, event: StaffEvent) -> None:
        if self.store.inbox.is_done(event.event_id):
            return
        if event.action.startswith("/"):
            self._command(event, event.action, event.text.strip())
            return
        staff_id = self.store.staff.staff_for_chat(event.chat_id)
        if staff_id is None:
            self._answer(event, NOT_CONNECTED)
            return
        if event.action == "reply":
            self._reply_to_client(event, staff_id)
        elif event.action == "message":
            # /help is no staff command on the wire (a client's /help is an ordinary message):
            # here, in a staff chat, any message that is no reply gets the help.
            self._answer(event, STAFF_HELP)
        else:
            self._button(event, staff_id)
        failpoints.hit("workspace.after_action")

    def _member(self, staff_id: str) -> StaffMember | None:
        return self.business.staff_member(staff_id)

    def _not_yours(self, lead: Lead) -> str:
        return f"Лид ведёт {staff_name(self.business, lead.owner)}." if lead.owner else "Это не ваш лид."

    # ------------------------------------------------------------------ buttons
    def _button(self, event: StaffEvent, staff_id: str) -> None:
        pressed = parse_button(event.action)
        if pressed is None:
            self._answer(event, "Эта кнопка больше не работает.")
            return
        action, lead_id, argument = pressed
        lead = self.store.leads.get(lead_id)
        if lead is None:
            self._answer(event, "Лид не найден.")
            return
        member = self._member(staff_id)
        allowed = (
            may_take(member, lead) if action in (Button.accept, Button.snooze) else may_act(member, lead)
        )
        if not allowed:
            self._answer(event, self._not_yours(lead))
            return
        if action == Button.transfer:
            self._transfer(event, staff_id, lead, argument)
            return
        at = event.received_at  # the press's time, the same on every redelivery
        if (
            action == Button.book
            and not (lead.preferred_date and lead.preferred_time)
            and not lead.appointment_at
        ):
            self._answer(event, "Ответьте на карточку: «запись 20.03 15:00» — и я запишу клиента.")
            return
        if action == Button.book and not lead.appointment_at:
            refused = self._calendar_refuses(lead, self._wished_time(lead), staff_id)
            if refused:
                self._answer(event, refused)
                return
        result = self.leads.apply(
            lead_id, lambda current: self._change(current, action, staff_id, at), known=lead
        )
        lead = result.lead if result else lead
        if result is not None and result.changed:
            self._after_button(result.before, lead, action, staff_id, event)
            self._answer(event, f"Готово: {ACTION_LOG[action]}.")
        else:
            self._answer(event, self._why_not(lead, action, staff_id))
        # Both idempotent, so a retry after a failed card edit repeats them harmlessly.
        self.crm.update_status(lead)
        self.cards.refresh(lead, event.event_id)

    def _change(self, lead: Lead, action: Button, staff_id: str, at: datetime) -> Lead | None:
        if action == Button.accept:
            return lifecycle.accept(lead, staff_id, at)
        if action == Button.snooze:
            return lifecycle.snooze(lead, staff_id, at, SNOOZE_MIN)
        if action == Button.book:
            if not (lead.preferred_date and lead.preferred_time):
                return None
            return lifecycle.book(lead, self._wished_time(lead), staff_id, at)
        return BUTTON_CHANGES[action](lead)

    def _wished_time(self, lead: Lead) -> datetime:
        assert lead.preferred_date and lead.preferred_time
        hour, minute = (int(p) for p in lead.preferred_time.split(":"))
        return datetime.combine(lead.preferred_date, time(hour, minute), self.business.tz)

    def _calendar_refuses(self, lead: Lead, at: datetime, staff_id: str) -> str | None:
        """«Записан» takes the time in the calendar first: a taken time is refused with the reason."""
        reason = self.bookings.check_staff_booking(lead, at, staff_id, clock.now())
        return f"Не записано: {reason}. Выберите другое время: «запись 20.03 15:00»." if reason else None

    def _after_button(
        self, before: Lead, lead: Lead, action: Button, staff_id: str, event: StaffEvent
    ) -> None:
        """What follows a change a button made — once, because only the press that made it gets here."""
        self.store.conversation.add_staff_note(
            lead.lead_id, event.event_id, event.received_at, staff_id=staff_id, action=str(action)
        )
        if action in (Button.accept, Button.book, Button.not_target, Button.visited, Button.no_show):
            self.store.timers.cancel(f"sla#{lead.lead_id}")
        if before.owner != lead.owner:
            self._owner_changed_in_crm(lead)
        if action == Button.snooze:
            self.store.timers.cancel(f"sla#{lead.lead_id}")
            self.leads.schedule_sla(
                lead.model_copy(
                    update={
                        "assigned_at": event.received_at + timedelta(minutes=SNOOZE_MIN),
                        "accepted_at": None,
                    }
                ),
                event.received_at,
            )
        if action in (Button.book, Button.no_show):
            self.leads.schedule_booking(lead, clock.now())
        if action == Button.book:
            self.bookings.confirm_to_client(lead)

    def _owner_changed_in_crm(self, lead: Lead) -> None:
        member = self._member(lead.owner)
        user = member.crm_user(self.crm.name) if member else None
        if user:
            self.crm.reassign(lead, user)

    def _why_not(self, lead: Lead, action: Button, staff_id: str) -> str:
        if lead.status in CLOSED_STATUSES:
            return "Лид уже закрыт."
        if action in (Button.accept, Button.snooze) and lead.accepted_at:
            if lead.owner == staff_id:
                return "Вы уже взяли этот лид."
            return f"Лид уже взял(а) {staff_name(self.business, lead.owner)}."
        if action in (Button.visited, Button.no_show) and lead.status not in lifecycle.BOOKED:
            return "Сначала отметьте запись."
        return "Уже отмечено."

    def _transfer(self, event: StaffEvent, staff_id: str, lead: Lead, to_staff: str) -> None:
        """«Передать»: first a list of colleagues who may take the lead, then the chosen one gets it."""
        if not to_staff:
            colleagues = [
                m for m in self.business.staff
                if m.active and m.id != lead.owner and m.role != "owner" and works_in(m, lead.branch)
            ]  # fmt: skip
            if not colleagues:
                self._answer(event, "Передать некому: в филиале больше никого нет.")
                return
            rows = [[button(m.name, Button.transfer, lead.lead_id, m.id)] for m in colleagues[:20]]
            self.messenger.send(
                OutboundMessage(
                    id=f"transfer_menu:{event.event_id}", channel="telegram", to=event.chat_id,
                    lead_id=lead.lead_id, kind="staff_answer", text="Кому передать лид?", buttons=rows,
                )
            )  # fmt: skip
            self._answer(event, "Выберите коллегу.")
            return
        target = self._member(to_staff)
        if target is None or not target.active:
            self._answer(event, "Этого сотрудника нет в списке.")
            return
        at = event.received_at
        result = self.leads.apply(
            lead.lead_id, lambda current: lifecycle.transfer(current, to_staff, at), known=lead
        )
        if result is None or not result.changed:
            self._answer(event, "Уже передан.")
            return
        self.store.conversation.add_staff_note(
            lead.lead_id, event.event_id, at, staff_id=staff_id, action=str(Button.transfer)
        )
        self._owner_changed_in_crm(result.lead)
        self.store.timers.cancel(f"sla#{lead.lead_id}")
        moved = self.cards.send(result.lead)  # the new owner's card, with «Беру»
        self.leads.schedule_sla(moved, at)
        self._answer(event, f"Передан: {target.name}.")
        self.cards.refresh(moved, event.event_id)

    # ------------------------------------------------------------------ replies to cards
    def _lead_of_card(self, event: StaffEvent) -> str | None:
        """The lead of the card (or the forwarded client message) a staff member replied to: a card
        names it in its first line; a forwarded message, or a card of an earlier version, is looked up."""
        named = CARD_HEAD.match(event.reply_to_text or "")
        if named:
            return named.group(1)
        return self.store.staff.lead_for_card(event.chat_id, event.reply_to_message_id or "")

    def _reply_to_client(self, event: StaffEvent, staff_id: str) -> None:
        lead_id = self._lead_of_card(event)
        if lead_id is None:
            self._answer(event, "Не нашёл лид этой карточки. Ответьте на карточку лида.")
            return
        current = self.store.leads.get(lead_id)
        if current is None:
            self._answer(event, "Лид не найден.")
            return
        if not may_take(self._member(staff_id), current):
            self._answer(event, self._not_yours(current))
            return
        at = event.received_at
        if event.text.strip().lower() == "/bot":
            self._hand_back(event, staff_id, current)
            return
        booking = (
            parse_staff_datetime(event.text, self.business, at)
            if event.text.lower().startswith("запись")
            else None
        )
        if booking:
            self._book_from_reply(event, staff_id, current, booking)
            return
        channel, to = current.client_address()
        if channel == "sms" and not current.contact.phone:
            self._answer(event, "У клиента нет телефона: ответить некуда, свяжитесь с ним сами.")
            return
        result = self.leads.apply(
            lead_id, lambda lead: lifecycle.take_over(lead, staff_id, at), known=current
        )
        lead = result.lead if result else current
        delivery = self.messenger.send(
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
        self.store.timers.cancel(f"sla#{lead_id}")
        if delivery.outcome == "failed":
            self._answer(event, "Не удалось доставить ответ клиенту (канал отказал). Свяжитесь с ним иначе.")
        self.crm.update_status(lead)
        self.cards.refresh(lead, event.event_id)

    def _book_from_reply(self, event: StaffEvent, staff_id: str, lead: Lead, booking: datetime) -> None:
        at = event.received_at
        if lead.appointment_at != booking:
            refused = self._calendar_refuses(lead, booking, staff_id)
            if refused:
                self._answer(event, refused)
                return
        result = self.leads.apply(
            lead.lead_id, lambda current: lifecycle.book(current, booking, staff_id, at), known=lead
        )
        if result is None:
            self._answer(event, "Лид не найден.")
            return
        if result.changed:
            self.store.conversation.add_staff_note(
                lead.lead_id, event.event_id, at, staff_id=staff_id, action=str(Button.book)
            )
            self.store.timers.cancel(f"sla#{lead.lead_id}")
            self.leads.schedule_booking(result.lead, clock.now())
            self.bookings.confirm_to_client(result.lead)
        self.crm.update_status(result.lead)
        self.cards.refresh(result.lead, event.event_id)

    def _hand_back(self, event: StaffEvent, staff_id: str, lead: Lead) -> None:
        result = self.leads.apply(lead.lead_id, lifecycle.hand_back, known=lead)
        if result is None:
            self._answer(event, "Лид не найден.")
            return
        self.store.conversation.add_staff_note(
            lead.lead_id, event.event_id, event.received_at, staff_id=staff_id, action=str(Button.back_to_bot)
        )
        self._answer(event, "Ассистент снова отвечает клиенту.")
        self.cards.refresh(result.lead, event.event_id)

    # ------------------------------------------------------------------ commands
    def _command(self, event: StaffEvent, command: str, argument: str) -> None:
        now = clock.now()
        if command == "/start":
            self._connect(event, argument, now)
            return
        staff_id = self.store.staff.staff_for_chat(event.chat_id)
        if staff_id is None:
            self._answer(event, NOT_CONNECTED)
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
        elif command == "/panel":
            self._panel_link(event, staff_id)
        elif command == "/bot":
            lead_id = self._lead_of_card(event) if event.reply_to_message_id else None
            lead = self.store.leads.get(lead_id) if lead_id else None
            if lead is None:
                self._answer(event, "Чтобы вернуть лид ассистенту, ответьте /bot на карточку лида.")
                return
            if not may_act(self._member(staff_id), lead):
                self._answer(event, self._not_yours(lead))
                return
            self._hand_back(event, staff_id, lead)
        else:
            self._answer(event, STAFF_COMMAND_HELP)

    def _connect(self, event: StaffEvent, argument: str, now: datetime) -> None:
        """``/start inv-<code>``: this chat becomes the staff member's; the cards of their open
        leads that went nowhere while they were not connected come here now."""
        code = argument.removeprefix("inv-")
        staff_id = self.store.staff.redeem_invite(code, now) if code else None
        if staff_id is None:
            if self.store.staff.staff_for_chat(event.chat_id):
                self._answer(event, "Вы уже подключены. " + STAFF_COMMAND_HELP)
                return
            self._answer(event, "Ссылка-приглашение недействительна или уже использована.")
            return
        self.store.staff.connect_chat(staff_id, event.chat_id)
        self._answer(
            event,
            f"Готово, {staff_name(self.business, staff_id)}! Сюда будут приходить ваши лиды. "
            + STAFF_COMMAND_HELP,
        )
        window = self.business.open_lead_window_days
        mine = [
            lead
            for lead in self.store.leads.received_between((now - timedelta(days=window)).date(), now.date())
            if lead.is_open and lead.owner == staff_id
        ]
        for lead in sorted(mine, key=lambda item: item.received_at)[-20:]:
            self.cards.send(lead, to_chat=event.chat_id)

    def _panel_link(self, event: StaffEvent, staff_id: str) -> None:
        """A one-time login link to the panel, valid 10 minutes, sent without a link preview."""
        from leadflow.steps.panel.auth import issue_login_link

        member = self._member(staff_id)
        if member is None or not member.active:
            self._answer(event, "Панель доступна только действующим сотрудникам.")
            return
        if not self.panel_base_url:
            self._answer(event, "Панель не настроена: администратору нужно задать PUBLIC_BASE_URL.")
            return
        link = issue_login_link(self.store.panel, staff_id, self.panel_base_url)
        self.messenger.send(
            OutboundMessage(
                id=f"answer:{event.event_id}", channel="telegram", to=event.chat_id, kind="panel_link",
                text=f"Вход в панель (ссылка одноразовая, действует 10 минут):\n{link}", link_preview=False,
            )
        )  # fmt: skip

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
        tz = self.business.tz
        local_today = now.astimezone(tz).date()
        # The index is by UTC day: a local day spans two of them.
        leads = self.store.leads.received_between(local_today - timedelta(days=1), now.date())
        return today_text(
            compute_kpis([x for x in leads if x.received_at.astimezone(tz).date() == local_today])
        )

    def _open_leads_text(self, staff_id: str, now: datetime) -> str:
        """Seniors and the owner see every open lead, a manager their branch's, everybody else their own."""
        member = self._member(staff_id)
        window = self.business.open_lead_window_days
        leads = [
            lead
            for lead in self.store.leads.received_between((now - timedelta(days=window)).date(), now.date())
            if lead.is_open and lead.owner and (lead.owner == staff_id or _sees(member, lead))
        ]
        if not leads:
            return "Открытых лидов нет."
        lines = [f"Открытые лиды ({len(leads)}):"]
        for lead in sorted(leads, key=lambda item: item.received_at)[-30:]:
            service = self.business.service(lead.service)
            lines.append(
                f"{lead.lead_id} · {lead.contact.name or '—'} · {service.name if service else '—'} · "
                f"{staff_name(self.business, lead.owner)} · {_sla_state(lead, now)}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ helpers
    def _answer(self, event: StaffEvent, text: str) -> None:
        """A button press is answered with a toast on the button; anything else with a message."""
        if event.callback_query_id:
            pressed = parse_button(event.action)
            self.messenger.answer_callback(
                event.event_id, event.chat_id, event.callback_query_id, text, pressed[1] if pressed else None
            )
            return
        self.messenger.send(
            OutboundMessage(
                id=f"answer:{event.event_id}",
                channel="telegram",
                to=event.chat_id,
                kind="staff_answer",
                text=text,
            )
        )
        logger.debug("staff answered", extra={"event_id": event.event_id})


def _sees(member: StaffMember | None, lead: Lead) -> bool:
    if member is None:
        return False
    return member.role in ("senior", "owner") or (member.role == "manager" and works_in(member, lead.branch))


def _sla_state(lead: Lead, now: datetime) -> str:
    if lead.accepted_at:
        return "✅ взят"
    if "sla_breached" in lead.tags:
        return "⏰ SLA нарушен"
    waited = int((now - (lead.assigned_at or lead.received_at)).total_seconds() // 60)
    return f"⏳ ждёт {max(waited, 0)} мин"
