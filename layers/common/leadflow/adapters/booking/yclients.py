"""YCLIENTS REST API v1 as a booking system (docs: developers.yclients.com, tag «Онлайн-запись»).

Free slots: ``book_staff`` (who can do the service) then ``book_times`` per master and day; a pick
is checked with ``book_check`` and booked with ``book_record``; a cancel is ``DELETE /record``.
Every answer is the ``{"success", "data", "meta"}`` envelope; a refusal carries
``meta.message`` and, for booking problems (HTTP 422), ``meta.errors[].code``: 433 is a time
already taken. 429 and 5xx are worth a retry; 401/403/404 are configuration problems.

Masters and services are matched to the config by ``yclients_id``: a YCLIENTS master the config
does not name is not offered (the confirmation and routing must know who it is).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

import requests

from leadflow.adapters.booking.base import Booked, BookingUnavailable, SlotTaken
from leadflow.business import BusinessConfig, Service
from leadflow.domain.models import Lead
from leadflow.domain.schedule import Slot, masters_for

log = logging.getLogger(__name__)

ACCEPT = "application/vnd.yclients.v2+json"
TAKEN_CODES = {433, 436, 437}  # time taken, nobody free, overlap
RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class YclientsBooking:
    name = "yclients"

    def __init__(
        self,
        business: BusinessConfig,
        session: requests.Session,
        *,
        partner_token: str,
        user_token: str | None = None,
        api_base: str = "https://api.yclients.com",
        timeout_s: float = 10,
    ):
        if business.booking.yclients is None:
            raise ValueError("booking.yclients.company_id is not set")
        if not partner_token:
            raise ValueError("YCLIENTS_PARTNER_TOKEN is not set")
        self.business = business
        self.company = business.booking.yclients.company_id
        self.session = session
        self.partner_token = partner_token
        self.user_token = user_token
        self.base = api_base.rstrip("/") + "/api/v1/"
        self.timeout_s = timeout_s
        self.requests = 0

    # ------------------------------------------------------------------ transport
    def _headers(self, user: bool) -> dict[str, str]:
        auth = f"Bearer {self.partner_token}"
        if user:
            if not self.user_token:
                raise BookingUnavailable("YCLIENTS_USER_TOKEN is not set", retryable=False)
            auth += f", User {self.user_token}"
        return {"Authorization": auth, "Accept": ACCEPT, "Content-Type": "application/json"}

    def _call(
        self, method: str, path: str, *, params: Any = None, body: Any = None, user: bool = False
    ) -> Any:
        """The ``data`` of a successful answer; SlotTaken for a booking refusal; else BookingUnavailable."""
        self.requests += 1
        try:
            response = self.session.request(
                method, self.base + path, params=params, json=body, headers=self._headers(user),
                timeout=self.timeout_s,
            )  # fmt: skip
        except requests.Timeout:
            raise BookingUnavailable(
                f"YCLIENTS {path.split('/')[0]}: no answer in {self.timeout_s}s"
            ) from None
        except requests.RequestException as exc:
            raise BookingUnavailable(f"YCLIENTS {path.split('/')[0]}: {type(exc).__name__}") from None
        status = response.status_code
        if status == 204:
            return None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        meta = payload.get("meta") if isinstance(payload, dict) else None
        if status < 400 and isinstance(payload, dict) and payload.get("success") is not False:
            return payload.get("data")
        message = meta.get("message") if isinstance(meta, dict) else None
        codes = {
            int(str(e.get("code")))
            for e in ((meta or {}).get("errors") or [] if isinstance(meta, dict) else [])
            if isinstance(e, dict) and str(e.get("code", "")).isdigit()
        }
        log.warning(
            "yclients %s failed: status=%s codes=%s", path.split("/")[0], status, sorted(codes) or "-"
        )
        if codes & TAKEN_CODES:
            raise SlotTaken(message or "the time is taken")
        raise BookingUnavailable(
            f"YCLIENTS {path.split('/')[0]}: HTTP {status}" + (f": {message}" if message else ""),
            retryable=status in RETRYABLE_STATUS or status >= 500,
        )

    # ------------------------------------------------------------------ the interface
    def _staff_by_yclients_id(self) -> dict[int, str]:
        return {m.yclients_id: m.id for m in self.business.staff if m.yclients_id is not None}

    def free_slots(
        self,
        service: Service,
        day: date,
        now: datetime,
        branch: str | None = None,
        lead_id: str | None = None,
    ) -> list[Slot]:
        if service.yclients_id is None:
            return []
        known = self._staff_by_yclients_id()
        skilled = {m.id for m in masters_for(self.business, service, branch)}
        params = {"service_ids[]": [service.yclients_id]}
        staff = self._call("GET", f"book_staff/{self.company}", params=params) or []
        slots: list[Slot] = []
        for member in staff:
            if not isinstance(member, dict) or not member.get("bookable", True):
                continue
            yid = int(member.get("id", 0))
            master = known.get(yid)
            if master is None or master not in skilled:
                continue
            times = (
                self._call("GET", f"book_times/{self.company}/{yid}/{day.isoformat()}", params=params) or []
            )
            for seance in times:
                start = _instant(seance.get("datetime"), self.business)
                if start is None or start < now:
                    continue
                length = int(seance.get("seance_length") or (service.duration_min or 0) * 60)
                slots.append(
                    Slot(start, master, length // 60, ref=str(seance.get("datetime")), service=service.id)
                )
        slots.sort(key=lambda s: (s.start, s.master))
        return slots

    def hold(self, slot: Slot, lead_id: str, now: datetime) -> bool:
        """YCLIENTS holds nothing for a partner: ``book_check`` says whether it is still free."""
        try:
            self._check(slot)
            return True
        except SlotTaken:
            return False

    def release(self, slots: list[Slot], lead_id: str, keep: Slot | None = None) -> None:
        return None

    def _appointment(self, slot: Slot) -> dict[str, Any]:
        member = self.business.staff_member(slot.master)
        service = self.business.service(slot.service)
        return {
            "id": 1,
            "services": [service.yclients_id] if service and service.yclients_id else [],
            "staff_id": member.yclients_id if member and member.yclients_id else 0,
            "datetime": slot.ref or slot.start.isoformat(),
        }

    def _check(self, slot: Slot) -> None:
        self._call("POST", f"book_check/{self.company}", body={"appointments": [self._appointment(slot)]})

    def book(self, slot: Slot, lead: Lead, now: datetime) -> Booked:
        """book_check then book_record; when YCLIENTS says the time is taken, the taker may be this
        very lead (book_record succeeded, the invocation died before the lead was saved, the queue
        retried): its record, found by our ``api_id``, is adopted instead of a «время заняли»."""
        try:
            self._check(slot)
        except SlotTaken:
            try:
                own = self._own_record(slot, lead)
            except BookingUnavailable as exc:
                if exc.retryable:
                    raise  # the queue tries again: better later than a wrong «заняли»
                log.warning("yclients: own record not looked up (%s)", exc)
                own = None
            if own is None:
                raise
            log.info("yclients: the lead's own record adopted")
            return Booked(slot, own)
        appointment = self._appointment(slot)
        phone = (lead.contact.phone or "").lstrip("+")
        body = {
            "phone": phone,
            "fullname": lead.contact.name or "Клиент",
            "email": "",
            "comment": "Запись через бота",
            "api_id": lead.lead_id,
            "appointments": [appointment],
        }
        data = self._call("POST", f"book_record/{self.company}", body=body)
        record = data[0] if isinstance(data, list) and data else {}
        record_id = record.get("record_id") if isinstance(record, dict) else None
        if not record_id:
            raise BookingUnavailable("YCLIENTS book_record: no record_id in the answer", retryable=False)
        return Booked(slot, str(record_id))

    def _own_record(self, slot: Slot, lead: Lead) -> str | None:
        """The id of the live record this lead already holds at the slot's master and time: the
        admin list ``GET /records/{company}`` of that master's day (user token), matched by the
        ``api_id`` book_record was given. None without a user token (nothing to look it up with)."""
        if not self.user_token:
            return None
        member = self.business.staff_member(slot.master)
        if member is None or member.yclients_id is None:
            return None
        day = slot.start.astimezone(self.business.tz).date().isoformat()
        params = {"staff_id": member.yclients_id, "start_date": day, "end_date": day, "count": 200}
        for page in range(1, 6):  # one master's day: a page of 200 is plenty; five is a hard stop
            data = self._call("GET", f"records/{self.company}", params={**params, "page": page}, user=True)
            records = data if isinstance(data, list) else []
            for record in records:
                if (
                    isinstance(record, dict)
                    and str(record.get("api_id") or "") == lead.lead_id
                    and not record.get("deleted")
                    and record_time(record, self.business) == slot.start
                    and record.get("id")
                ):
                    return str(record["id"])
            if len(records) < 200:
                break
        return None

    def cancel(self, lead: Lead) -> None:
        if lead.booking_ref and lead.booking_ref.isdigit():
            self._call("DELETE", f"record/{self.company}/{lead.booking_ref}", user=True)

    def record(self, record_id: str) -> dict[str, Any] | None:
        """A record re-read by id (a webhook's word is not trusted): the admin API, user token."""
        try:
            data = self._call("GET", f"record/{self.company}/{record_id}", user=True)
        except BookingUnavailable as exc:
            if "HTTP 404" in str(exc):
                return None
            raise
        return data if isinstance(data, dict) else None


def _instant(value: Any, business: BusinessConfig) -> datetime | None:
    """book_times' ``datetime``: ISO 8601 (``+03:00`` or ``+0300``) or a Unix timestamp."""
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        from datetime import UTC

        return datetime.fromtimestamp(int(value), UTC).astimezone(business.tz)
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "T")
    if len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]  # +0900 → +09:00
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=business.tz)


def record_time(record: dict[str, Any], business: BusinessConfig) -> datetime | None:
    return _instant(record.get("datetime") or record.get("date"), business)
