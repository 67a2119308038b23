"""Our leads as rows of a Google sheet (``crm: {kind: sheets, sheet: {spreadsheet_id, sheet}}``).

One row per lead under a header row of our column names. Columns are found by their header,
not by position: the owner may move, add and fill columns of their own, and sort or filter the
rows — a lead's row is found by its id (the «ID лида» column) every time it is touched. A
header we need and do not find is added after the last filled header cell; nothing else in the
header is ever written.

Requests (the service account gets 60 reads and 60 writes a minute): a route batch costs one
read (the header) and one ``values:append`` with every lead of the batch; a redelivery reads the
id column too, and leads already in it are not appended again. A status change costs two reads
(header, id column) and one ``values:batchUpdate``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from leadflow.adapters.crm.base import CrmUnavailable, Pushed, not_pushed
from leadflow.adapters.crm.google_sheets import SheetsClient, SheetsError, a1, column_letter
from leadflow.business import BusinessConfig, Sheet
from leadflow.domain.cards import CHANNEL_LABEL, STATUS_LABEL, staff_name
from leadflow.domain.knowledge import lead_services
from leadflow.domain.models import Lead
from leadflow.domain.wording import describe_time

log = logging.getLogger(__name__)

# Our columns, in the order a new sheet gets them: (key, header).
COLUMNS: list[tuple[str, str]] = [
    ("received", "Дата и время"),
    ("channel", "Канал"),
    ("source", "Источник / UTM"),
    ("promo", "Промокод"),
    ("name", "Имя"),
    ("phone", "Телефон"),
    ("service", "Услуга"),
    ("wish", "Пожелание"),
    ("intent", "Интерес"),
    ("temperature", "Температура"),
    ("owner", "Ответственный"),
    ("status", "Статус"),
    ("lead_id", "ID лида"),
]
INTENT_LABEL = {"booking": "запись", "question": "вопрос", "not_target": "не целевой"}
TEMPERATURE_LABEL = {"hot": "горячий", "warm": "тёплый", "cold": "холодный"}
HEADER_ROW = "1:1"


def _norm(text: Any) -> str:
    return " ".join(str(text).split()).casefold() if text is not None else ""


class Layout:
    """Where each of our columns is in the sheet's header row (0-based), and what to add."""

    def __init__(self, header: Sequence[Any]):
        self.header = list(header)
        found: dict[str, int] = {}
        for index, text in enumerate(self.header):
            found.setdefault(_norm(text), index)
        self.position: dict[str, int] = {}
        self.missing: list[tuple[int, str]] = []  # (position, header) to write
        last = max((i for i, text in enumerate(self.header) if _norm(text)), default=-1)
        for key, title in COLUMNS:
            if _norm(title) in found:
                self.position[key] = found[_norm(title)]
            else:
                last += 1
                self.position[key] = last
                self.missing.append((last, title))

    @property
    def width(self) -> int:
        return max(self.position.values()) + 1

    def row(self, values: dict[str, str]) -> list[str | None]:
        """A full-width row: ours in their columns, None (left alone) in the owner's."""
        cells: list[str | None] = [None] * self.width
        for key, value in values.items():
            cells[self.position[key]] = value
        return cells

    def column(self, key: str) -> str:
        return column_letter(self.position[key])


def _source(lead: Lead) -> str:
    utm = [f"utm_{k}={v}" for k, v in lead.utm.model_dump().items() if v]
    return " · ".join(part for part in (lead.source or "", ", ".join(utm)) if part)


class SheetsCrm:
    name = "sheets"

    def __init__(self, client: SheetsClient, sheet: Sheet, business: BusinessConfig):
        self.client = client
        self.spreadsheet_id = sheet.spreadsheet_id
        self.sheet = sheet.sheet
        self.business = business

    def pending(self, lead: Lead) -> bool:
        return not_pushed(lead)

    def mirror_status(self, lead: Lead) -> None:
        return None

    # ------------------------------------------------------------------ rows

    def row_values(self, lead: Lead, business: BusinessConfig) -> dict[str, str]:
        received = lead.received_at.astimezone(business.tz).strftime("%Y-%m-%d %H:%M")
        services = lead_services(lead, business)
        service = business.service(lead.service)
        hour = describe_time(lead.preferred_time, lead.preferred_window).removeprefix("в ")
        branch = business.branch(lead.branch)
        wish = " ".join(v for v in (str(lead.preferred_date or ""), hour) if v)
        if branch:
            wish = f"{wish}, {branch.title}" if wish else branch.title
        return {
            "received": received,
            "channel": CHANNEL_LABEL.get(lead.channel, lead.channel),
            "source": _source(lead),
            "promo": lead.promo or "",
            "name": lead.contact.name or "",
            "phone": lead.contact.phone or "",
            "service": ", ".join(s.name for s in services) or (service.name if service else ""),
            "wish": wish,
            "intent": INTENT_LABEL.get(str(lead.intent or ""), str(lead.intent or "")),
            "temperature": TEMPERATURE_LABEL.get(str(lead.temperature or ""), ""),
            "owner": staff_name(business, lead.owner) if lead.owner else "",
            "status": STATUS_LABEL.get(str(lead.status), str(lead.status)),
            "lead_id": lead.lead_id,
        }

    def _layout(self) -> Layout:
        """The header as it is now; the headers we miss are written (once: next time they are there)."""
        header = self.client.get_values(self.spreadsheet_id, a1(self.sheet, HEADER_ROW))
        layout = Layout(header[0] if header else [])
        if layout.missing:
            self.client.batch_update(
                self.spreadsheet_id,
                [(a1(self.sheet, f"{column_letter(i)}1"), [[title]]) for i, title in layout.missing],
            )
        return layout

    def _rows_of(self, layout: Layout) -> dict[str, list[int]]:
        """Lead id → its row numbers (1-based; a row the owner copied is found twice)."""
        column = layout.column("lead_id")
        values = self.client.get_values(self.spreadsheet_id, a1(self.sheet, f"{column}2:{column}"))
        rows: dict[str, list[int]] = {}
        for offset, cells in enumerate(values):
            if cells and str(cells[0]).strip():
                rows.setdefault(str(cells[0]).strip(), []).append(offset + 2)
        return rows

    # ------------------------------------------------------------------ the Crm interface

    def push(
        self, leads: list[tuple[Lead, str | None]], business: BusinessConfig, redelivered: bool = False
    ) -> list[Pushed]:
        try:
            layout = self._layout()
            present = self._rows_of(layout) if redelivered else {}
            new = [lead for lead, _ in leads if lead.lead_id not in present]
            if new:
                rows = [layout.row(self.row_values(lead, business)) for lead in new]
                self.client.append(self.spreadsheet_id, a1(self.sheet, "A1"), rows)
        except SheetsError as exc:
            if exc.retryable:
                raise CrmUnavailable(str(exc)) from None
            return [Pushed(lead.lead_id, None, error=self._explain(exc)) for lead, _ in leads]
        log.info("sheets push: leads=%d appended=%d", len(leads), len(new))
        return [Pushed(lead.lead_id, lead.lead_id, "row") for lead, _ in leads]

    def _explain(self, exc: SheetsError) -> str:
        email = self.client.token.email
        if exc.status == 403:
            return f"{exc} — откройте таблицу для {email} (Настройки доступа → редактор)"
        if exc.status == 404:
            return f"{exc} — нет таблицы {self.spreadsheet_id}: проверьте crm.sheet.spreadsheet_id"
        if exc.status == 400:
            return f"{exc} — проверьте имя листа crm.sheet.sheet ({self.sheet!r})"
        return str(exc)

    def _update_row(self, lead: Lead, keys: Sequence[str], values: dict[str, str] | None = None) -> int:
        """Write our ``keys`` cells of the lead's row(s); the rows found (0: the owner deleted it)."""
        values = values if values is not None else self.row_values(lead, self.business)
        try:
            layout = self._layout()
            rows = self._rows_of(layout).get(lead.lead_id, [])
            if rows:
                self.client.batch_update(
                    self.spreadsheet_id,
                    [
                        (a1(self.sheet, f"{layout.column(key)}{row}"), [[values[key]]])
                        for row in rows
                        for key in keys
                    ],
                )
        except SheetsError as exc:
            if exc.retryable:
                raise CrmUnavailable(str(exc)) from None
            raise
        if not rows:
            log.info("sheets: no row for lead %s (deleted by hand?)", lead.lead_id)
        return len(rows)

    def update_status(self, lead: Lead) -> None:
        if lead.crm_id:
            self._update_row(lead, ("status", "owner"))

    def update_details(self, lead: Lead, business: BusinessConfig) -> None:
        """The row's client cells; one we have nothing for keeps what the owner typed there."""
        if lead.crm_id:
            values = self.row_values(lead, business)
            self._update_row(lead, [k for k in ("name", "phone", "service", "wish") if values[k]], values)

    def raise_priority(self, lead: Lead) -> None:
        if lead.crm_id:
            self._update_row(lead, ("temperature",))

    def reassign(self, lead: Lead, crm_user_id: str | None) -> None:
        if lead.crm_id:
            self._update_row(lead, ("owner",))

    def status_of(self, lead: Lead) -> str | None:
        return None  # a sheet sends no events: what the owner types there stays there

    def forget(self, lead: Lead) -> str | None:
        if not lead.crm_id:
            return None
        blank = dict.fromkeys((key for key, _ in COLUMNS), "")
        blank["lead_id"] = lead.lead_id  # the row stays findable until a person deletes it
        try:
            self._update_row(lead, [key for key, _ in COLUMNS if key != "lead_id"], blank)
        except (SheetsError, CrmUnavailable) as exc:
            return f"Google Sheets не очистил строку лида {lead.lead_id}: {exc}"
        return None
