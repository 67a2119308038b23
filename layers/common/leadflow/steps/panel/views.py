"""The panel's pages: Сводка, Заявки (and a lead's page), Сотрудники, Проблемы, Правила with
«кто получит этот лид» and a form per config section (config_forms.py), and the way in as a
Telegram Mini App (/panel/tg). Every page checks the session and the member's role; every POST its
CSRF token. Texts in Russian; whatever clients typed is escaped by the templates."""

from __future__ import annotations

import csv
import functools
import hmac
import io
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from leadflow import clock
from leadflow.adapters.crm import Crm
from leadflow.adapters.dead_letters import DeadLetters
from leadflow.adapters.messenger import Messenger
from leadflow.adapters.store import Store
from leadflow.adapters.store.config_store import ConfigChanged
from leadflow.business import BusinessConfig, StaffMember
from leadflow.domain import lifecycle
from leadflow.domain.assignment import choose_owner
from leadflow.domain.cards import CHANNEL_LABEL, STATUS_LABEL, staff_name
from leadflow.domain.facts import LeadFact, fact_of
from leadflow.domain.ics import booking_calendar
from leadflow.domain.kpi import compute_kpis
from leadflow.domain.models import CLOSED_STATUSES, Channel, Lead, LeadStatus
from leadflow.domain.panel import (
    ROLE_LABEL,
    bar_chart,
    heat_map,
    invite_qr_svg,
    manages_staff,
    saved_by,
    sees_lead,
    sees_problems,
    sees_staff,
    who_would_get,
)
from leadflow.domain.phones import to_e164
from leadflow.domain.rules import LeadFacts, first_matching_rule
from leadflow.observability import logger
from leadflow.steps.cards import Cards
from leadflow.steps.leads import LeadChanges
from leadflow.steps.panel.auth import MINI_APP_MAX_AGE, SESSION_COOKIE, SESSION_TTL, verify_init_data
from leadflow.steps.panel.config_forms import SECTIONS, russian_config_error
from leadflow.steps.panel.http import (
    BadRequest,
    Request,
    Response,
    is_local_host,
    parse_event,
    redirect,
    session_cookie,
)

TEMPLATES = Path(__file__).with_name("templates")
PAGE_SIZE = 50
MAX_PERIOD_DAYS = 92
TEMPERATURE_LABEL = {"hot": "🔥 горячий", "warm": "🌤 тёплый", "cold": "❄️ холодный"}
INTENT_LABEL = {"booking": "запись", "question": "вопрос", "not_target": "не целевой"}
PERIODS = {"today": "Сегодня", "7": "7 дней", "30": "30 дней", "custom": "Свой период"}


@dataclass
class Viewer:
    member: StaffMember
    csrf: str
    session_id: str


class Forbidden(Exception):
    pass


# The Mini App's entry page runs one script of our own (no inline script, nothing from elsewhere).
CSP_WITH_OWN_SCRIPT = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@functools.cache
def mini_app_script() -> str:
    return (Path(__file__).with_name("static") / "tg.js").read_text(encoding="utf-8")


INVITE_CODE = re.compile(r"[A-Za-z0-9]{8,32}")
BOT_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
CALENDAR_PATH = re.compile(r"/ics/([A-Za-z0-9_-]{16,64})\.ics")
NOT_A_CALENDAR = Response(404, "not found", "text/plain; charset=utf-8")


class NotFound(Exception):
    pass


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(CHANNEL_LABEL=CHANNEL_LABEL, STATUS_LABEL=STATUS_LABEL, ROLE_LABEL=ROLE_LABEL,
                       TEMPERATURE_LABEL=TEMPERATURE_LABEL, PERIODS=PERIODS)  # fmt: skip
    return env


_ENV: Environment | None = None


def templates() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


class Panel:
    def __init__(
        self,
        store: Store,
        business: BusinessConfig,
        messenger: Messenger,
        crm: Crm,
        dead_letters: DeadLetters | None,
        public_base_url: str | None = None,
        bot_username: str | None = None,
        bot_token: Callable[[], str | None] = lambda: None,
        facts_kept: bool = True,
    ):
        """``facts_kept``: the leads table's stream keeps the stats table's lead facts (AWS); False
        where nothing does yet (Yandex), and the pages count the period's leads themselves."""
        self.store = store
        self.facts_kept = facts_kept
        self.business = business
        self.messenger = messenger
        self.crm = crm
        self.dead_letters = dead_letters
        self.public_base_url = public_base_url
        username = (bot_username or "").strip().lstrip("@")
        self.bot_username = username if BOT_USERNAME.fullmatch(username) else None  # as Telegram allows
        self.bot_token = bot_token  # read only when the Mini App asks (a secret: SSM in AWS)
        self.leads = LeadChanges(store, business)
        self.cards = Cards(store, messenger, business)

    # ------------------------------------------------------------------ entry point
    def handle_event(self, event: dict, context: Any = None) -> dict:
        version = str(event.get("version") or "2.0")  # Yandex API Gateway sends payload 1.0
        try:
            request = parse_event(event)
        except BadRequest as exc:
            return self._message(400, "Неверный запрос", str(exc)).event(version)
        try:
            return self.handle(request).event(version)
        except Forbidden:
            return self._message(403, "Нет доступа", "Эта страница вам недоступна.").event(version)
        except NotFound:
            return self._message(404, "Не найдено", "Такой страницы или заявки нет.").event(version)

    def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path.startswith("/ics/"):
            return self._calendar(request)
        if path == "/panel/login":
            return self._login_page(request) if method == "GET" else self._login(request)
        if path == "/panel/static/tg.js" and method == "GET":
            return Response(200, mini_app_script(), "text/javascript; charset=utf-8")
        viewer = self._viewer(request)
        if path == "/panel/tg":
            if viewer is not None and method == "GET":
                return redirect("/panel/summary")  # the Mini App opened again: the session goes on
            return self._mini_app(request)
        if viewer is None:
            return self._message(
                401,
                "Вход в панель",
                "Чтобы войти, отправьте боту команду /panel и откройте ссылку из ответа.",
            )
        if method == "POST":
            self._check_csrf(request, viewer)
        routes = {
            ("GET", "/panel"): lambda: redirect("/panel/summary"),
            ("GET", "/panel/summary"): lambda: self._summary(request, viewer),
            ("GET", "/panel/leads"): lambda: self._leads(request, viewer),
            ("GET", "/panel/leads.csv"): lambda: self._leads_csv(request, viewer),
            ("GET", "/panel/staff"): lambda: self._staff(request, viewer),
            ("GET", "/panel/problems"): lambda: self._problems(request, viewer),
            ("GET", "/panel/rules"): lambda: self._rules(request, viewer),
            ("GET", "/panel/logout"): lambda: self._render(viewer, "logout.html", title="Выход"),
            ("POST", "/panel/logout"): lambda: self._logout(request, viewer),
            ("POST", "/panel/problems/redrive"): lambda: self._redrive(request, viewer),
            ("POST", "/panel/rules"): lambda: self._edit_rules(request, viewer),
        }
        if (method, path) in routes:
            return routes[(method, path)]()
        parts = path.split("/")  # ["", "panel", "leads", "<id>", ("reassign" | "lose")]
        if len(parts) >= 4 and parts[2] == "leads":
            lead = self._visible_lead(parts[3], viewer)
            if method == "GET" and len(parts) == 4:
                return self._lead_page(request, viewer, lead)
            if method == "POST" and len(parts) == 5 and parts[4] in ("reassign", "lose"):
                action = self._reassign if parts[4] == "reassign" else self._lose
                return action(request, viewer, lead)
        if len(parts) == 5 and parts[2] == "rules" and parts[3] == "section":
            return self._section(request, viewer, parts[4])
        if len(parts) >= 5 and parts[2] == "rules" and parts[3] == "v" and parts[4].isdigit():
            if method == "GET" and len(parts) == 5:
                return self._version(viewer, int(parts[4]))
            if method == "POST" and len(parts) == 6 and parts[5] == "restore":
                return self._restore(viewer, int(parts[4]))
        if len(parts) == 5 and parts[2] == "staff" and method == "POST":
            if parts[4] == "deactivate":
                return self._deactivate(viewer, parts[3])
            if parts[4] == "invite":
                return self._invite(viewer, parts[3])
            if parts[4] in ("off", "on"):
                return self._day_off(viewer, parts[3], parts[4] == "off")
        raise NotFound

    # ------------------------------------------------------------------ getting in
    def _login_page(self, request: Request) -> Response:
        token = request.arg("t")
        if not token or not self.store.panel.login_is_valid(token, clock.wall_now()):
            return self._message(
                410, "Ссылка не действует",
                "Ссылка для входа одноразовая и действует 10 минут. Отправьте боту /panel, чтобы получить новую.",
            )  # fmt: skip
        # GET spends nothing: a link preview or a mail scanner that opens the link cannot use it up.
        return self._page("login.html", title="Вход", token=token)

    def _login(self, request: Request) -> Response:
        self._check_origin(request)
        staff_id = self.store.panel.spend_login(request.form.get("t", ""), clock.wall_now())
        member = self.business.staff_member(staff_id) if staff_id else None
        if member is None or not member.active:
            return self._message(
                410, "Ссылка не действует",
                "Эта ссылка уже использована или устарела. Отправьте боту /panel, чтобы получить новую.",
            )  # fmt: skip
        session_id, _ = self.store.panel.open_session(member.id, clock.wall_now() + SESSION_TTL)
        logger.info("panel login", extra={"staff_id": member.id})
        cookie = session_cookie(
            SESSION_COOKIE, session_id, int(SESSION_TTL.total_seconds()), self._secure(request)
        )
        return redirect("/panel/summary", [cookie])

    def _mini_app(self, request: Request) -> Response:
        """The panel as a Telegram Mini App: GET is a page whose script posts Telegram's signed
        initData back; POST checks it with the bot token and opens a session for the staff member
        whose Telegram chat it is (private chat id = user id), as «Войти» does."""
        if request.method == "GET":
            page = self._page("tg.html", title="Вход")
            page.headers["Content-Security-Policy"] = CSP_WITH_OWN_SCRIPT
            return page
        self._check_origin(request)
        now = clock.wall_now()
        token = self.bot_token() or ""
        fields = verify_init_data(request.form.get("init_data", ""), token, now) if token else None
        refused = self._message(
            403, "Вход не удался",
            "Откройте панель заново из меню бота. Если не помогло — отправьте боту /panel и войдите по ссылке.",
        )  # fmt: skip
        if fields is None:
            return refused
        chat = str(fields["user"].get("id") or "")
        staff_id = self.store.staff.staff_for_chat(chat) if chat.isdigit() else None
        member = self.business.staff_member(staff_id) if staff_id else None
        member = member or next((m for m in self.business.staff if m.telegram_chat_id == chat and chat), None)
        if member is None or not member.active:
            return self._message(
                403, "Нет доступа",
                "Этот Telegram не подключён к салону как сотрудник. Попросите владельца прислать приглашение.",
            )  # fmt: skip
        if not self.store.panel.first_use(request.form["init_data"], now + MINI_APP_MAX_AGE):
            return refused  # the same signed data a second time: a replay, not Telegram
        session_id, _ = self.store.panel.open_session(member.id, now + SESSION_TTL)
        logger.info("panel login from the Telegram Mini App", extra={"staff_id": member.id})
        cookie = session_cookie(
            SESSION_COOKIE, session_id, int(SESSION_TTL.total_seconds()), self._secure(request)
        )
        return redirect("/panel/summary", [cookie])

    def _logout(self, request: Request, viewer: Viewer) -> Response:
        self.store.panel.end_session(viewer.session_id)
        gone = session_cookie(SESSION_COOKIE, "", 0, self._secure(request))
        page = self._message(200, "Вы вышли", "Чтобы войти снова, отправьте боту /panel.")
        page.cookies.append(gone)
        return page

    def _secure(self, request: Request) -> bool:
        return not is_local_host(request.host)

    def _viewer(self, request: Request) -> Viewer | None:
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id:
            return None
        session = self.store.panel.session(session_id, clock.wall_now())
        member = self.business.staff_member(session.staff_id) if session else None
        if session is None or member is None or not member.active:
            return None
        return Viewer(member, session.csrf, session_id)

    def _check_origin(self, request: Request) -> None:
        """A browser names the page a form came from: another site's forms are refused."""
        if request.origin and request.origin != "null" and urlsplit(request.origin).netloc != request.host:
            raise Forbidden

    def _check_csrf(self, request: Request, viewer: Viewer) -> None:
        self._check_origin(request)
        sent = request.form.get("csrf", "")
        if not sent or not hmac.compare_digest(sent.encode(), viewer.csrf.encode()):
            raise Forbidden

    # ------------------------------------------------------------------ rendering
    def _page(self, template: str, status: int = 200, **values: Any) -> Response:
        values.setdefault("business_name", self.business.name)
        return Response(status, templates().get_template(template).render(**values))

    def _render(self, viewer: Viewer, template: str, status: int = 200, **values: Any) -> Response:
        member = viewer.member
        nav = [("summary", "Сводка"), ("leads", "Заявки")]
        if member.role != "specialist":
            nav.append(("staff", "Сотрудники"))
        if sees_problems(member):
            nav.append(("problems", "Проблемы"))
        nav.append(("rules", "Правила"))
        who = functools.partial(saved_by, self.business)
        return self._page(template, status, viewer=member, csrf=viewer.csrf, nav=nav, saved_by=who, **values)

    def _calendar(self, request: Request) -> Response:
        """GET /ics/<token>.ics: the booking as an iCalendar file, for the client (no login: the
        token is the key). 404 for an unknown or expired link; a cancelled visit answers a CANCEL event."""
        match = CALENDAR_PATH.fullmatch(request.path)
        if request.method not in ("GET", "HEAD") or match is None:
            return NOT_A_CALENDAR
        now = clock.now()
        lead_id = self.store.panel.calendar_lead(match.group(1), now)
        lead = self.store.leads.get(lead_id) if lead_id else None
        body = booking_calendar(lead, self.business, now) if lead else None
        if body is None:
            return NOT_A_CALENDAR
        return Response(
            200,
            body,
            "text/calendar; charset=utf-8",
            {"Content-Disposition": 'attachment; filename="booking.ics"'},
        )

    def _message(self, status: int, title: str, text: str) -> Response:
        return self._page("message.html", status, title=title, text=text)

    # ------------------------------------------------------------------ period and leads
    def _today(self) -> date:
        return clock.now().astimezone(self.business.tz).date()

    def _period(self, request: Request) -> tuple[str, date, date]:
        period = request.arg("period", "7")
        today = self._today()
        if period == "today":
            return period, today, today
        if period == "30":
            return period, today - timedelta(days=29), today
        if period == "custom":
            try:
                since = date.fromisoformat(request.arg("since"))
                until = date.fromisoformat(request.arg("until") or today.isoformat())
            except ValueError:
                return "7", today - timedelta(days=6), today
            since = max(min(since, until), until - timedelta(days=MAX_PERIOD_DAYS - 1))
            return period, since, until
        return "7", today - timedelta(days=6), today

    def _received(self, since: date, until: date) -> list[Lead]:
        """Leads received on the business's days since..until (the index is by UTC day)."""
        tz = self.business.tz
        leads = self.store.leads.received_between(since - timedelta(days=1), until + timedelta(days=1))
        return [lead for lead in leads if since <= lead.received_at.astimezone(tz).date() <= until]

    def _facts(self, since: date, until: date) -> list[LeadFact]:
        """The facts of the leads received on the business's days since..until: one Query of the
        stats table (its items are by UTC day: one more each side), whatever the leads stored."""
        if not self.facts_kept:
            return [fact_of(lead) for lead in self._received(since, until)]
        tz = self.business.tz
        facts = self.store.stats.between(since - timedelta(days=1), until + timedelta(days=1))
        return [fact for fact in facts if since <= fact.received_at.astimezone(tz).date() <= until]

    def _visible_lead(self, lead_id: str, viewer: Viewer) -> Lead:
        lead = self.store.leads.get(lead_id) if lead_id else None
        if lead is None:
            raise NotFound
        if not sees_lead(viewer.member, lead):
            raise Forbidden
        return lead

    # ------------------------------------------------------------------ Сводка
    def _summary(self, request: Request, viewer: Viewer) -> Response:
        period, since, until = self._period(request)
        branch = request.arg("branch") or None
        leads = [fact for fact in self._facts(since, until) if sees_lead(viewer.member, fact)]
        if branch:
            leads = [fact for fact in leads if fact.branch == branch]
        k = compute_kpis(leads, tz=self.business.tz)
        tz = self.business.tz
        heat = Counter((lead.received_at.astimezone(tz).weekday(), lead.received_at.astimezone(tz).hour)
                       for lead in leads)  # fmt: skip
        by_channel = [(CHANNEL_LABEL.get(name, name), v["leads"]) for name, v in k["by_channel"].items()]
        conversion = [
            (CHANNEL_LABEL.get(name, name), round(100 * (v["conversion"] or 0)))
            for name, v in k["by_channel"].items()
        ]
        by_source = [(name, v["leads"]) for name, v in k["by_source"].items()]
        owners = [
            {"name": staff_name(self.business, name), "leads": v["leads"], "breaches": v["sla_breaches"]}
            for name, v in k["by_owner"].items() if name != "—"
        ]  # fmt: skip
        charts = {
            "channels": Markup(bar_chart(by_channel)),  # noqa: S704 - drawn here, labels escaped
            "conversion": Markup(bar_chart(conversion, "%")),  # noqa: S704
            "sources": Markup(bar_chart(by_source[:10])),  # noqa: S704
            "heat": Markup(heat_map(dict(heat))),  # noqa: S704
        }
        return self._render(
            viewer, "summary.html", title="Сводка", k=k, charts=charts, owners=owners, period=period,
            since=since, until=until, branch=branch, branches=self.business.branches,
            campaigns=[(name, v) for name, v in k["by_campaign"].items() if name != "—"],
        )  # fmt: skip

    # ------------------------------------------------------------------ Заявки
    def _filtered(self, request: Request, viewer: Viewer) -> tuple[list[LeadFact], dict]:
        """The leads the list shows (newest first, as facts: one Query for the period) and the
        filters that chose them. A search by phone or name goes through its index, any period."""
        period, since, until = self._period(request)
        query = request.arg("q")
        filters = {
            name: request.arg(name) for name in ("status", "channel", "owner", "branch", "temperature")
        }
        phone = to_e164(query) if query and any(ch.isdigit() for ch in query) else None
        found: list[LeadFact]
        if phone:
            found = [fact_of(lead) for lead in self.store.leads.with_phone(phone)]  # the by_phone index
        elif query:
            found = [fact_of(lead) for lead in self.store.leads.named(query)]  # the by_name index
        else:
            found = self._facts(since, until)
        found = [lead for lead in found if sees_lead(viewer.member, lead)]
        for name, value in filters.items():
            if value:
                found = [lead for lead in found if str(getattr(lead, name) or "") == value]
        found.sort(key=lambda lead: lead.received_at, reverse=True)
        chosen = {"filters": filters, "q": query, "period": period, "since": since, "until": until}
        return found, chosen

    def _leads_csv(self, request: Request, viewer: Viewer) -> Response:
        """The filtered list for Excel: UTF-8 with a BOM, «;» between fields."""
        found, _ = self._filtered(request, viewer)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(["Заявка", "Получена", "Клиент", "Телефон", "Канал", "Статус", "Температура",
                         "Услуга", "Ответственный", "Филиал", "Источник", "UTM-кампания"])  # fmt: skip
        tz = self.business.tz
        for lead in found:
            writer.writerow([
                lead.lead_id, lead.received_at.astimezone(tz).strftime("%d.%m.%Y %H:%M"),
                _cell(lead.name), lead.phone or "", CHANNEL_LABEL.get(lead.channel, lead.channel),
                STATUS_LABEL.get(lead.status, lead.status), lead.temperature or "", lead.service or "",
                staff_name(self.business, lead.owner) if lead.owner else "", lead.branch or "",
                _cell(lead.source), _cell(lead.campaign),
            ])  # fmt: skip
        headers = {"Content-Disposition": 'attachment; filename="leads.csv"'}
        return Response(200, "\ufeff" + out.getvalue(), "text/csv; charset=utf-8", headers)

    def _leads(self, request: Request, viewer: Viewer) -> Response:
        found, chosen = self._filtered(request, viewer)
        filters, query, period = chosen["filters"], chosen["q"], chosen["period"]
        since, until = chosen["since"], chosen["until"]
        try:
            page = max(int(request.arg("page", "1")), 1)
        except ValueError:
            page = 1
        shown = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        base = {k: v for k, v in {**filters, "q": query, "period": period}.items() if v}
        if period == "custom":
            base.update(since=since.isoformat(), until=until.isoformat())
        more = urlencode({**base, "page": page + 1}) if len(found) > page * PAGE_SIZE else None
        return self._render(
            viewer, "leads.html", title="Заявки", leads=shown, total=len(found), page=page, more=more,
            filters=filters, q=query, period=period, since=since, until=until, tz=self.business.tz,
            csv_query=urlencode({k: v for k, v in base.items() if k != "page"}),
            staff=self.business.staff, branches=self.business.branches, statuses=list(LeadStatus),
            channels=[c.value for c in Channel], name=lambda sid: staff_name(self.business, sid),
        )  # fmt: skip

    def _lead_page(self, request: Request, viewer: Viewer, lead: Lead) -> Response:
        history = self.store.conversation.history(lead.lead_id)
        messages = sorted(
            (item for item in history if item.get("direction") in ("in", "out", "staff")),
            key=lambda item: str(item.get("at") or item.get("sent_at") or item.get("claimed_at") or ""),
        )
        tz = self.business.tz

        def at(moment: datetime | None) -> str:
            return moment.astimezone(tz).strftime("%d.%m %H:%M") if moment else ""

        timeline = [
            (at(lead.received_at), f"Заявка из канала «{CHANNEL_LABEL.get(lead.channel, lead.channel)}»")
        ]
        if lead.first_reply_at:
            seconds = int((lead.first_reply_at - lead.received_at).total_seconds())
            timeline.append((at(lead.first_reply_at), f"Первый ответ через {seconds} с"))
        if lead.intent or lead.temperature:
            timeline.append(("", f"Квалификация: {INTENT_LABEL.get(lead.intent or '', '—')}, "
                                 f"{TEMPERATURE_LABEL.get(lead.temperature or '', '—')}"))  # fmt: skip
        if lead.owner:
            timeline.append((at(lead.assigned_at), f"Ответственный: {staff_name(self.business, lead.owner)} "
                                                   f"({lead.assignment_reason or '—'})"))  # fmt: skip
        if lead.accepted_at:
            timeline.append((at(lead.accepted_at), "Взят в работу"))
        if "sla_breached" in lead.tags:
            timeline.append(("", "SLA нарушен"))
        if lead.crm_id:
            timeline.append(("", f"CRM: {lead.crm_id}"))
        if lead.crm_error:
            timeline.append(("", f"CRM отказала: {lead.crm_error}"))
        if lead.appointment_at:
            timeline.append((at(lead.appointment_at), "Запись"))
        for item in messages:
            if item.get("direction") == "out" and item.get("kind") not in ("reply", None):
                timeline.append((_local(item.get("sent_at") or item.get("claimed_at"), tz),
                                 f"Отправлено: {item.get('kind')} ({item.get('status') or '—'})"))  # fmt: skip
        may_change = sees_lead(viewer.member, lead) and lead.status not in CLOSED_STATUSES
        colleagues = [m for m in self.business.staff if m.active and m.id != lead.owner and m.role != "owner"]
        return self._render(
            viewer, "lead.html", title=f"Заявка {lead.lead_id}", lead=lead, messages=messages,
            timeline=timeline, may_change=may_change, colleagues=colleagues,
            owner_name=staff_name(self.business, lead.owner) if lead.owner else "—",
            service=self.business.service(lead.service),
            local=lambda value: _local(value, tz), done=request.arg("done"),
        )  # fmt: skip

    def _reassign(self, request: Request, viewer: Viewer, lead: Lead) -> Response:
        target = request.form.get("to", "")
        now = clock.now()
        if target == "auto":
            owner = self.hand_on(lead, now, exclude=frozenset({lead.owner} if lead.owner else set()))
            done = "reassigned" if owner else "unchanged"
        else:
            member = self.business.staff_member(target)
            if member is None or not member.active:
                return self._message(400, "Неверный сотрудник", "Такого действующего сотрудника нет.")
            done = "reassigned" if self._move_to(lead, member.id, now) else "unchanged"
        return redirect(f"/panel/leads/{lead.lead_id}?done={done}")

    def _lose(self, request: Request, viewer: Viewer, lead: Lead) -> Response:
        reason = request.form.get("reason", "").strip()[:200]
        result = self.leads.apply(
            lead.lead_id, lambda current: lifecycle.lose(current, "lost_in_panel"), known=lead
        )
        if result is not None and result.changed:
            self.store.conversation.add_staff_note(
                lead.lead_id, f"panel-lose:{lead.lead_id}", clock.now(), staff_id=viewer.member.id,
                action="lose", text=reason or None,
            )  # fmt: skip
            self.store.timers.cancel(f"sla#{lead.lead_id}")
            self.crm.update_status(result.lead)
        return redirect(f"/panel/leads/{lead.lead_id}?done=lost")

    def _move_to(self, lead: Lead, staff_id: str, now: datetime) -> bool:
        """The lead goes to ``staff_id`` as a staff «Передать» would: they must take it again."""
        result = self.leads.apply(
            lead.lead_id, lambda current: lifecycle.transfer(current, staff_id, now), known=lead
        )
        if result is None or not result.changed:
            return False
        member = self.business.staff_member(staff_id)
        if member and member.bitrix24_user_id:
            self.crm.reassign(result.lead, str(member.bitrix24_user_id))
        self.store.timers.cancel(f"sla#{lead.lead_id}")
        moved = self.cards.send(result.lead)  # the new owner's card, with «Беру»
        self.leads.schedule_sla(moved, now)
        return True

    def hand_on(self, lead: Lead, now: datetime, exclude: frozenset[str]) -> str | None:
        """The next owner by the rules, never one in ``exclude``; None when the rules keep it."""
        contact = self.store.contacts.get(lead.contact_id)
        facts = LeadFacts(repeat_client=False, vip=bool(contact and contact.vip), branch=lead.branch)
        chosen = choose_owner(
            lead, facts, self.business, self.store.staff, now, None, exclude, like=lead.owner
        )
        if chosen.owner == lead.owner:
            return None
        if chosen.owner in exclude or not self._move_to(lead, chosen.owner, now):
            self.store.staff.release_lead(chosen.owner, lead.lead_id)  # choosing counted it
            return None
        return chosen.owner

    # ------------------------------------------------------------------ Сотрудники
    def _staff(self, request: Request, viewer: Viewer) -> Response:
        if viewer.member.role == "specialist":
            raise Forbidden
        members = [m for m in self.business.staff if sees_staff(viewer.member, m)]
        states = self.store.staff.state([m.id for m in members])
        now = clock.now()
        rows = []
        for m in members:
            state = states[m.id]
            rows.append({
                "member": m,
                "connected": bool(state.telegram_chat_id or m.telegram_chat_id),
                "open_leads": state.open_leads,
                "off": state.is_off(now),
                "off_until": _local(state.off_until, self.business.tz) if state.off_until else "",
            })  # fmt: skip
        invite = None
        code = request.arg("invite")
        if INVITE_CODE.fullmatch(code):
            link = f"https://t.me/{self.bot_username}?start=inv-{code}" if self.bot_username else None
            invite = {"command": f"/start inv-{code}", "link": link,
                      "qr": Markup(invite_qr_svg(link)) if link else None}  # noqa: S704 - drawn here from our own URL  # fmt: skip
        invited = self.business.staff_member(request.arg("for"))
        return self._render(
            viewer, "staff.html", title="Сотрудники", rows=rows, manages=manages_staff(viewer.member),
            invite=invite, invited=invited.name if invited else "", done=request.arg("done"),
        )  # fmt: skip

    def _invite(self, viewer: Viewer, staff_id: str) -> Response:
        member = self.business.staff_member(staff_id)
        if member is None:
            raise NotFound
        if not (manages_staff(viewer.member) or (viewer.member.role in ("senior", "manager")
                                                 and sees_staff(viewer.member, member))):  # fmt: skip
            raise Forbidden
        import secrets

        code = secrets.token_urlsafe(12).replace("-", "").replace("_", "")[:16]
        self.store.staff.add_invite(code, staff_id, clock.wall_now() + timedelta(days=7))
        return redirect("/panel/staff?" + urlencode({"invite": code, "for": staff_id}))

    def _day_off(self, viewer: Viewer, staff_id: str, off: bool) -> Response:
        """«Выходной»: no new leads for the member until the end of the business's today."""
        member = self.business.staff_member(staff_id)
        if member is None:
            raise NotFound
        if viewer.member.role == "specialist" or not sees_staff(viewer.member, member):
            raise Forbidden
        until = datetime.combine(self._today() + timedelta(days=1), datetime.min.time(), self.business.tz)
        self.store.staff.set_off_until(staff_id, until if off else None)
        said = "выходной до конца дня" if off else "снова на смене"
        return redirect("/panel/staff?" + urlencode({"done": f"{member.name}: {said}"}))

    def _deactivate(self, viewer: Viewer, staff_id: str) -> Response:
        if not manages_staff(viewer.member):
            raise Forbidden
        member = self.business.staff_member(staff_id)
        if member is None:
            raise NotFound
        if member.id == viewer.member.id:
            return self._message(400, "Нельзя", "Нельзя отключить самого себя.")
        moved = self.deactivate(staff_id, who=f"panel:{viewer.member.id} (отключён {staff_id})")
        return redirect(
            "/panel/staff?" + urlencode({"done": f"{member.name}: отключён, передано лидов: {moved}"})
        )

    def deactivate(self, staff_id: str, who: str = "panel") -> int:
        """The member stops getting leads (the stored config says so), their panel sessions end,
        and their open leads go to others by the rules. Returns how many leads were handed on."""
        from leadflow.business import parse_business_config
        from leadflow.config_yaml import set_staff_active

        new_text = set_staff_active(self.store.config.yaml_text(), staff_id, False)  # comments kept
        self.business = parse_business_config(new_text, source="panel")
        self.store.config.put(new_text, who=who)
        self.leads = LeadChanges(self.store, self.business)
        self.cards = Cards(self.store, self.messenger, self.business)
        self.store.panel.end_sessions_of(staff_id)
        now = clock.now()
        moved = 0
        for lead_id in sorted(self.store.staff.open_lead_ids(staff_id)):
            lead = self.store.leads.get(lead_id)
            if lead is None or not lead.is_open or lead.owner != staff_id:
                self.store.staff.release_lead(staff_id, lead_id)
                continue
            if self.hand_on(lead, now, exclude=frozenset({staff_id})):
                moved += 1
        logger.info("staff deactivated in the panel", extra={"staff_id": staff_id, "handed_on": moved})
        return moved

    # ------------------------------------------------------------------ Проблемы
    def _problems(self, request: Request, viewer: Viewer) -> Response:
        if not sees_problems(viewer.member):
            raise Forbidden
        dead = self.dead_letters.list() if self.dead_letters else []
        today = self._today()
        recent = self._received(today - timedelta(days=13), today)
        crm_errors = [lead for lead in recent if lead.crm_error]
        # Undelivered messages of the last 3 days' leads: one query per lead, bounded by the days.
        undelivered = []
        for lead in recent:
            if lead.received_at.astimezone(self.business.tz).date() < today - timedelta(days=2):
                continue
            for item in self.store.conversation.outbound(lead.lead_id):
                if item.get("status") == "failed":
                    undelivered.append({"lead": lead, "kind": item.get("kind"), "error": item.get("error"),
                                        "at": _local(item.get("sent_at") or item.get("claimed_at"), self.business.tz)})  # fmt: skip
        timers = self.store.timers.given_up()
        return self._render(
            viewer, "problems.html", title="Проблемы", dead=dead, crm_errors=crm_errors,
            undelivered=undelivered, timers=timers, local=lambda value: _local(value, self.business.tz), may_redrive=manages_staff(viewer.member), done=request.arg("done"),
        )  # fmt: skip

    def _redrive(self, request: Request, viewer: Viewer) -> Response:
        if not manages_staff(viewer.member):
            raise Forbidden
        ok = bool(self.dead_letters) and self.dead_letters.redrive(  # type: ignore[union-attr]
            request.form.get("queue", ""), request.form.get("message_id", "")
        )
        return redirect("/panel/problems?done=" + ("redriven" if ok else "gone"))

    # ------------------------------------------------------------------ Правила
    def _may_edit_rules(self, member: StaffMember) -> bool:
        return member.role == "owner" or (
            member.role == "senior" and member.id in self.business.panel.rule_editors
        )

    def _changed_meanwhile(self, what_to_do: str) -> Response:
        return self._message(
            409,
            "Настройки изменились",
            f"Пока вы редактировали, настройки сохранил кто-то другой. {what_to_do}",
        )

    def _rules(self, request: Request, viewer: Viewer, **extra: Any) -> Response:
        result = None
        sample = {name: request.arg(name) for name in
                  ("channel", "service", "branch", "temperature", "intent", "source", "utm_campaign", "at")}  # fmt: skip
        if request.arg("try"):
            result = self._what_if(sample, vip=request.arg("vip") == "1")
        editor = self._may_edit_rules(viewer.member)
        sees_versions = editor or viewer.member.role == "senior"
        stored, version = self.store.config.current() if editor else ("", 0)
        values: dict[str, Any] = {
            "draft": stored, "version": version,
            "versions": self.store.config.versions() if sees_versions else [],
            "errors": [], "replay": None, "days": 30, "done": request.arg("done"),
        }  # fmt: skip
        values.update(extra)
        return self._render(
            viewer, "rules.html", extra.pop("status", 200), title="Правила", rules=self.business.routing,
            services=self.business.services, branches=self.business.branches, channels=[c.value for c in Channel],
            sample=sample, result=result, editor=editor, name=lambda sid: staff_name(self.business, sid), sections=SECTIONS,
            **{k: v for k, v in values.items() if k != "status"},
        )  # fmt: skip

    def _edit_rules(self, request: Request, viewer: Viewer) -> Response:
        """«Что будет, если» (replay the last days under the draft) or «Сохранить» (a new version)."""
        if not self._may_edit_rules(viewer.member):
            raise Forbidden
        from leadflow.business import ConfigError, parse_business_config

        # A browser sends a textarea's lines ended by CRLF (HTML's form submission): store them as typed.
        draft = request.form.get("yaml", "").replace("\r\n", "\n")
        opened_at = request.form.get("version")
        if (
            request.form.get("action") == "save"
            and opened_at
            and opened_at != str(self.store.config.current()[1])
        ):
            return self._changed_meanwhile("Откройте страницу снова и внесите правку ещё раз.")
        kept = {"version": int(opened_at)} if opened_at and opened_at.isdigit() else {}  # the draft's base
        try:
            days = min(max(int(request.form.get("days") or 30), 1), MAX_PERIOD_DAYS)
        except ValueError:
            days = 30
        try:
            parsed = parse_business_config(draft, source="черновик")
        except ConfigError as exc:
            errors = [russian_config_error(line) for line in str(exc).splitlines()]
            return self._rules(request, viewer, draft=draft, errors=errors, days=days, status=400, **kept)
        if request.form.get("action") == "save":
            try:
                self.store.config.put(draft, who=f"panel:{viewer.member.id}", based_on=kept.get("version"))
            except ConfigChanged:
                return self._changed_meanwhile("Откройте страницу снова и внесите правку ещё раз.")
            logger.info("config saved in the panel", extra={"staff_id": viewer.member.id})
            return redirect("/panel/rules?done=saved")
        from leadflow.domain.whatif import replay

        today = self._today()
        report = replay(
            self._received(today - timedelta(days=days - 1), today), self.business, parsed
        ).as_dict()
        return self._rules(request, viewer, draft=draft, replay=report, days=days, **kept)

    def _section(self, request: Request, viewer: Viewer, section: str) -> Response:
        """One section of the config as a form: GET shows it (with `config check`'s warnings at
        their fields); POST «Что будет, если» replays the draft, «Сохранить» stores a new version.
        A draft that does not validate comes back with each problem next to its field."""
        import yaml

        from leadflow.config_yaml import ConfigEditError, edit_config
        from leadflow.steps.panel.config_forms import (
            apply_edits,
            attach,
            check_draft,
            form_edits,
            form_groups,
        )

        if section not in SECTIONS:
            raise NotFound
        if not self._may_edit_rules(viewer.member):
            raise Forbidden
        text, version = self.store.config.current()
        raw = yaml.safe_load(text) or {}
        if request.method == "GET":
            groups = form_groups(section, raw)
            top = attach(groups, [], check_draft(text)[2])
            return self._section_form(viewer, section, groups, version, top=top, done=request.arg("done"))
        if request.form.get("version") != str(version):
            return self._changed_meanwhile("Откройте форму снова: в ней будут новые значения.")
        try:
            days = min(max(int(request.form.get("days") or 30), 1), MAX_PERIOD_DAYS)
        except ValueError:
            days = 30
        edits = form_edits(section, request.form, raw)
        try:
            draft = edit_config(text, lambda data: apply_edits(data, edits))
        except ConfigEditError as exc:  # the stored text itself is broken: the YAML form can mend it
            return self._message(400, "Настройки не читаются", str(exc))
        parsed, problems, warnings = check_draft(draft)
        stored_rows = len(raw.get(section) or []) if isinstance(raw.get(section), list) else 0
        groups = form_groups(section, yaml.safe_load(draft) or {}, stored_rows)
        top = attach(groups, problems, warnings)
        if problems or parsed is None:
            return self._section_form(viewer, section, groups, version, top=top, status=400, days=days)
        if request.form.get("action") == "save":
            if not edits:
                return redirect(f"/panel/rules/section/{section}?done=unchanged")
            try:
                self.store.config.put(draft, who=f"panel:{viewer.member.id}", based_on=version)
            except ConfigChanged:
                return self._changed_meanwhile("Откройте форму снова: в ней будут новые значения.")
            logger.info(
                "config section saved in the panel", extra={"staff_id": viewer.member.id, "section": section}
            )
            return redirect(f"/panel/rules/section/{section}?done=saved")
        from leadflow.domain.whatif import replay

        today = self._today()
        report = replay(
            self._received(today - timedelta(days=days - 1), today), self.business, parsed
        ).as_dict()
        return self._section_form(viewer, section, groups, version, top=top, replay=report, days=days)

    def _section_form(self, viewer: Viewer, section: str, groups: list, version: int, status: int = 200,
                      **values: Any) -> Response:  # fmt: skip
        values.setdefault("days", 30)
        return self._render(
            viewer, "section.html", status, title=SECTIONS[section], section=section, sections=SECTIONS,
            groups=groups, version=version, name=lambda sid: staff_name(self.business, sid), **values,
        )  # fmt: skip

    def _version(self, viewer: Viewer, version: int) -> Response:
        if not (self._may_edit_rules(viewer.member) or viewer.member.role == "senior"):
            raise Forbidden
        text = self.store.config.version_yaml(version)
        if text is None:
            raise NotFound
        entry: dict = next((v for v in self.store.config.versions() if v.get("version") == version), {})
        return self._render(viewer, "version.html", title=f"Версия {version}", version=version, text=text,
                            editor=self._may_edit_rules(viewer.member), entry=entry)  # fmt: skip

    def _restore(self, viewer: Viewer, version: int) -> Response:
        if not self._may_edit_rules(viewer.member):
            raise Forbidden
        text = self.store.config.version_yaml(version)
        if text is None:
            raise NotFound
        self.store.config.put(text, who=f"panel:{viewer.member.id} (восстановлена версия {version})")
        return redirect("/panel/rules?done=restored")

    def _what_if(self, sample: dict[str, str], vip: bool) -> dict:
        tz = self.business.tz
        try:
            at = datetime.fromisoformat(sample["at"]).replace(tzinfo=tz) if sample["at"] else clock.now()
        except ValueError:
            return {"error": "Время указано неверно."}
        try:
            lead = Lead.model_validate({
                "lead_id": "what-if", "channel": sample["channel"] or "telegram", "chat_id": "-", "contact_id": "-",
                "service": sample["service"] or None, "branch": sample["branch"] or None,
                "temperature": sample["temperature"] or None, "intent": sample["intent"] or None,
                "source": sample["source"] or None, "utm": {"campaign": sample["utm_campaign"] or None},
                "received_at": at, "last_message_at": at,
            })  # fmt: skip
        except ValueError:
            return {"error": "Проверьте поля заявки."}
        states = self.store.staff.state([m.id for m in self.business.staff])
        rule = first_matching_rule(lead, LeadFacts(vip=vip, branch=lead.branch), self.business)
        chosen = who_would_get(lead, self.business, states, at, vip=vip)
        return {
            "rule": rule.name,
            "owner": staff_name(self.business, chosen.owner),
            "reason": chosen.reason,
            "callback_at": _local(chosen.callback_at, tz) if chosen.callback_at else None,
        }


def _cell(text: str | None) -> str:
    """A field Excel will not run as a formula (a client may type «=HYPERLINK(…)» as a name)."""
    text = text or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _local(value: Any, tz: Any) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        return moment.strftime("%d.%m %H:%M")
    return moment.astimezone(tz).strftime("%d.%m %H:%M")
