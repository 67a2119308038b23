"""A fake YCLIENTS REST API v1 (the online-booking methods and the admin record methods leadflow uses),
speaking the documented format: every answer is ``{"success", "data", "meta"}``; refusals carry
``meta.message`` and, for booking problems (HTTP 422), ``meta.errors[{code, message}]`` — 433 for a
time already taken; 401 without the partner token (``Authorization: Bearer <partner>``), and
without the user token (``Bearer <partner>, User <user>``) for the admin methods.

Its calendar is its own: masters' working hours per day and the records it holds. A record is
written under one lock, so of two clients who want one master's time exactly one gets it — as the
real system would answer 433 to the second. ``take(staff_id, at, minutes)`` books time "in
YCLIENTS" (an administrator at the desk); ``rate_limited`` answers the next N calls with 429.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.fakes.http import Request, Response


@dataclass
class Record:
    record_id: int
    staff_id: int
    service_ids: list[int]
    start: datetime
    minutes: int
    phone: str = ""
    fullname: str = ""
    api_id: str | None = None
    deleted: bool = False
    attendance: int = 0  # 2 confirmed, 1 came, 0 expected, -1 did not come

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)


@dataclass
class FakeYclients:
    company_id: int = 555
    partner_token: str = "partner-token"
    user_token: str = "user-token"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    staff: dict[int, str] = field(default_factory=dict)  # id → name
    services: dict[int, int] = field(default_factory=dict)  # id → minutes
    hours: tuple[time, time] = (time(10), time(20))
    step_min: int = 30
    records: list[Record] = field(default_factory=list)
    rate_limited: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(2820023))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ helpers for tests
    def take(self, staff_id: int, at: datetime, minutes: int) -> Record:
        with self._lock:
            record = Record(next(self._ids), staff_id, [], at, minutes, fullname="Walk-in")
            self.records.append(record)
            return record

    def live(self) -> list[Record]:
        return [r for r in self.records if not r.deleted]

    # ------------------------------------------------------------------ wire format
    @staticmethod
    def _ok(data: object, status: int = 200, meta: object = None) -> Response:
        return Response(status, {"success": True, "data": data, "meta": [] if meta is None else meta})

    @staticmethod
    def _fail(status: int, message: str, errors: list[dict] | None = None) -> Response:
        meta: dict = {"message": message}
        if errors:
            meta["errors"] = errors
        return Response(status, {"success": False, "data": None, "meta": meta})

    def _authorised(self, request: Request, user: bool) -> bool:
        header = request.headers.get("authorization", "")
        parts = [p.strip() for p in header.split(",")]
        if not parts or parts[0] != f"Bearer {self.partner_token}":
            return False
        return not user or (len(parts) > 1 and parts[1] == f"User {self.user_token}")

    def route(self, request: Request) -> Response:
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return Response(429, {"success": False, "data": None, "meta": {"message": "Too Many Requests"}})
        path = request.path.removeprefix("/api/v1/").strip("/").split("/")
        admin = path[0] in ("record", "records")
        if not self._authorised(request, user=admin):
            return self._fail(401, "Unauthorized")
        if len(path) < 2 or path[1] != str(self.company_id):
            return self._fail(404, "Not found")
        handler = {
            ("GET", "book_staff"): self._book_staff,
            ("GET", "book_times"): self._book_times,
            ("POST", "book_check"): self._book_check,
            ("POST", "book_record"): self._book_record,
            ("GET", "record"): self._get_record,
            ("GET", "records"): self._list_records,
            ("DELETE", "record"): self._delete_record,
        }.get((request.method, path[0]))
        if handler is None:
            return self._fail(404, "Not found")
        return handler(request, path[2:])

    def _service_minutes(self, request: Request) -> int | None:
        raw = request.query.get("service_ids[]") or request.query.get("service_ids")
        if raw is None:
            return 60
        return self.services.get(int(raw)) if raw.isdigit() else None

    def _book_staff(self, request: Request, rest: list[str]) -> Response:
        return self._ok(
            [
                {"id": str(sid), "name": name, "specialization": "Мастер", "position": [], "bookable": True,
                 "weight": 0, "show_rating": 0, "rating": 0, "votes_count": 0, "comments_count": 0,
                 "avatar": "", "information": ""}
                for sid, name in self.staff.items()
            ]
        )  # fmt: skip

    def _busy(self, staff_id: int, start: datetime, minutes: int, ignore: Record | None = None) -> bool:
        end = start + timedelta(minutes=minutes)
        return any(
            r.staff_id == staff_id and r is not ignore and start < r.end and end > r.start
            for r in self.live()
        )

    def _free(self, staff_id: int, start: datetime, minutes: int) -> bool:
        local = start.astimezone(self.tz)
        opening = datetime.combine(local.date(), self.hours[0], self.tz)
        closing = datetime.combine(local.date(), self.hours[1], self.tz)
        return (
            opening <= local
            and local + timedelta(minutes=minutes) <= closing
            and not self._busy(staff_id, start, minutes)
        )

    def _book_times(self, request: Request, rest: list[str]) -> Response:
        if len(rest) != 2 or not rest[0].isdigit() or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", rest[1]):
            return self._fail(404, "Not found")
        staff_id, day = int(rest[0]), date.fromisoformat(rest[1])
        minutes = self._service_minutes(request)
        if staff_id not in self.staff or minutes is None:
            return self._ok([])
        seances = []
        at = datetime.combine(day, self.hours[0], self.tz)
        while at.time() < self.hours[1] and at.date() == day:
            if self._free(staff_id, at, minutes):
                seances.append(
                    {"time": f"{at:%H:%M}", "seance_length": minutes * 60, "datetime": at.isoformat()}
                )
            at += timedelta(minutes=self.step_min)
        return self._ok(seances)

    def _appointment_problem(self, appointment: dict) -> Response | None:
        try:
            staff_id = int(appointment["staff_id"])
            start = _parse(appointment["datetime"], self.tz)
            services = [int(s) for s in appointment.get("services") or []]
        except (KeyError, TypeError, ValueError):
            return self._fail(422, "An error has occurred", [{"code": 422, "message": "Bad appointment"}])
        if any(s not in self.services for s in services):
            return self._fail(422, "An error has occurred", [{"code": 438, "message": "Service not found"}])
        minutes = sum(self.services[s] for s in services) or 60
        if staff_id not in self.staff or not self._free(staff_id, start, minutes):
            return self._fail(
                422, "An error has occurred",
                [{"code": 433, "message": "The selected time is already taken or is not working.",
                  "id": appointment.get("id")}],
            )  # fmt: skip
        return None

    def _book_check(self, request: Request, rest: list[str]) -> Response:
        body = request.json() or {}
        with self._lock:
            for appointment in body.get("appointments") or []:
                problem = self._appointment_problem(appointment)
                if problem:
                    return problem
        return Response(201, {"success": True, "data": None, "meta": {"message": "Created"}})

    def _book_record(self, request: Request, rest: list[str]) -> Response:
        body = request.json() or {}
        phone = str(body.get("phone") or "")
        if not re.fullmatch(r"\d{11,15}", phone):
            return self._fail(422, "An error has occurred", [{"code": 431, "message": "Wrong phone format"}])
        if not body.get("fullname"):
            return self._fail(422, "An error has occurred", [{"code": 435, "message": "Name is required"}])
        created = []
        with self._lock:
            for appointment in body.get("appointments") or []:
                problem = self._appointment_problem(appointment)
                if problem:
                    return problem
            for appointment in body.get("appointments") or []:
                services = [int(s) for s in appointment.get("services") or []]
                record = Record(
                    next(self._ids), int(appointment["staff_id"]), services,
                    _parse(appointment["datetime"], self.tz), sum(self.services[s] for s in services) or 60,
                    phone, str(body.get("fullname")), body.get("api_id"),
                )  # fmt: skip
                self.records.append(record)
                created.append({"id": appointment.get("id"), "record_id": record.record_id,
                                "record_hash": f"{record.record_id:x}hash"})  # fmt: skip
        return self._ok(created, 201)

    def _find(self, rest: list[str]) -> Record | None:
        if not rest or not rest[0].isdigit():
            return None
        return next((r for r in self.records if r.record_id == int(rest[0])), None)

    def _get_record(self, request: Request, rest: list[str]) -> Response:
        record = self._find(rest)
        if record is None:
            return self._fail(404, "Not found")
        return self._ok(record_json(record, self.company_id, self.staff))

    def _list_records(self, request: Request, rest: list[str]) -> Response:
        """GET /records/{company_id}: ``staff_id``, ``start_date``/``end_date`` (visit days, inclusive),
        ``page``/``count`` (at most 200 a page); deleted records only with ``with_deleted=1``."""
        query = request.query
        try:
            staff_id = int(query["staff_id"]) if query.get("staff_id") else None
            start = date.fromisoformat(query["start_date"]) if query.get("start_date") else None
            end = date.fromisoformat(query["end_date"]) if query.get("end_date") else None
            page, count = int(query.get("page") or 1), min(int(query.get("count") or 25), 200)
        except ValueError:
            return self._fail(400, "Invalid parameters")
        with_deleted = query.get("with_deleted") in ("1", "true")
        chosen = [
            r for r in self.records
            if (with_deleted or not r.deleted)
            and (staff_id is None or r.staff_id == staff_id)
            and (start is None or r.start.astimezone(self.tz).date() >= start)
            and (end is None or r.start.astimezone(self.tz).date() <= end)
        ]  # fmt: skip
        chosen.sort(key=lambda r: r.start)
        window = chosen[(page - 1) * count : page * count]
        return self._ok(
            [record_json(r, self.company_id, self.staff) for r in window], meta={"total_count": len(chosen)}
        )

    def _delete_record(self, request: Request, rest: list[str]) -> Response:
        record = self._find(rest)
        if record is None or record.deleted:
            return self._fail(404, "Not found")
        record.deleted = True
        return Response(204, b"")


def record_json(record: Record, company_id: int, staff: dict[int, str]) -> dict:
    """A record as GET /record and the record webhooks carry it (a subset of the documented fields)."""
    return {
        "id": record.record_id, "company_id": company_id, "staff_id": record.staff_id,
        "services": [{"id": s, "title": "", "cost": 0} for s in record.service_ids],
        "staff": {"id": record.staff_id, "name": staff.get(record.staff_id, "")},
        "client": {"id": 1, "name": record.fullname, "phone": "+" + record.phone if record.phone else ""},
        "date": f"{record.start:%Y-%m-%d %H:%M:%S}", "datetime": record.start.isoformat(),
        "create_date": f"{record.start:%Y-%m-%dT%H:%M:%S%z}", "seance_length": record.minutes * 60,
        "length": record.minutes * 60, "attendance": record.attendance, "visit_attendance": record.attendance, "confirmed": 1,
        "deleted": record.deleted, "api_id": record.api_id or "", "online": True,
    }  # fmt: skip


def _parse(value: object, tz: ZoneInfo) -> datetime:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz)
    text = str(value).replace(" ", "T")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
