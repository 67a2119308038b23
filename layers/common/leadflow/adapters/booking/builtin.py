"""The built-in calendar: bookings and holds in BookingsTable — pk ``day#<local date>``, sk
``<master>#<HH:MM>`` — one item per ``booking.step_min`` cell a visit (with its gap) covers.

No double booking: a booking or a hold writes all its cells in one transaction, each conditional
on the cell being free (absent, an expired hold, or this lead's own), so of two clients who pick
overlapping slots of one master at the same moment exactly one gets them. Offering reads one
query per day looked at; holding costs one transaction per offered slot.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from leadflow.adapters.booking.base import Booked, BookingUnavailable, SlotTaken
from leadflow.adapters.store._dynamo import plain
from leadflow.business import BusinessConfig, Service
from leadflow.domain.assignment import shift_calendar
from leadflow.domain.models import Lead
from leadflow.domain.schedule import Busy, Slot, free_slots

MAX_CELLS = 100  # DynamoDB's limit of items in one transaction
REQUESTS = [0]  # calendar requests made in this process (bench/booking reads it)


class BuiltinBooking:
    name = "builtin"

    def __init__(self, table: Any, business: BusinessConfig):
        self.table = table
        self.business = business
        self.requests = 0  # DynamoDB requests made (bench/booking counts them)

    def _count(self) -> None:
        self.requests += 1
        REQUESTS[0] += 1

    # ------------------------------------------------------------------ reading
    def busy(self, day: date, now: datetime, *, ignore_lead: str | None = None) -> list[Busy]:
        """Visits and live holds that cover ``day``: every cell of that day, one interval per visit."""
        items = self._cells(day)
        seen: dict[tuple[str, str, str], Busy] = {}
        for item in items:
            if item.get("lead_id") == ignore_lead:
                continue
            if item.get("kind") == "hold" and int(item.get("until", 0)) <= now.timestamp():
                continue
            key = (item["master"], item["start"], item["end"])
            seen.setdefault(
                key,
                Busy(
                    item["master"], datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])
                ),
            )
        return list(seen.values())

    def _cells(self, day: date) -> list[dict]:
        kwargs: dict = {
            "KeyConditionExpression": Key("pk").eq(f"day#{day.isoformat()}"),
            "ConsistentRead": True,
        }
        found: list[dict] = []
        while True:
            self._count()
            page = self.table.query(**kwargs)
            found.extend(plain(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def free_slots(
        self,
        service: Service,
        day: date,
        now: datetime,
        branch: str | None = None,
        lead_id: str | None = None,
    ) -> list[Slot]:
        busy = self.busy(day, now, ignore_lead=lead_id)
        return free_slots(self.business, service, day, busy, now=now, branch=branch)

    # ------------------------------------------------------------------ writing
    def _cell_keys(self, slot: Slot) -> list[dict[str, str]]:
        """The grid cells [start, end + gap) of the slot covers, in the master's local time."""
        member = self.business.staff_member(slot.master)
        tz = shift_calendar(member, self.business).tz if member else self.business.tz
        step = timedelta(minutes=self.business.booking.step_min)
        start = slot.start.astimezone(tz)
        end = (slot.end + timedelta(minutes=self.business.booking.gap_min)).astimezone(tz)
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        cell = midnight + ((start - midnight) // step) * step  # floor to the grid
        keys = []
        while cell < end:
            local = cell.astimezone(tz)
            keys.append({"pk": f"day#{local.date().isoformat()}", "sk": f"{slot.master}#{local:%H:%M}"})
            cell = (cell.astimezone(UTC) + step).astimezone(tz)
        if len(keys) > MAX_CELLS:
            raise BookingUnavailable(f"a visit of {len(keys)} cells: raise booking.step_min", retryable=False)
        return keys

    def _write(self, slot: Slot, lead_id: str, kind: str, now: datetime, until: datetime | None) -> None:
        items = []
        for key in self._cell_keys(slot):
            item: dict[str, Any] = {
                **key,
                "kind": kind,
                "lead_id": lead_id,
                "master": slot.master,
                "start": slot.start.isoformat(),
                "end": slot.end.isoformat(),
            }
            if until is not None:
                item["until"] = int(until.timestamp())
                item["expires_at"] = int(until.timestamp()) + 24 * 3600  # TTL: the table cleans up
            condition = "attribute_not_exists(pk) OR lead_id = :me"
            values: dict[str, Any] = {":me": lead_id}
            if kind == "hold":
                # a hold never overwrites a booking, even this lead's own
                condition = "attribute_not_exists(pk) OR (lead_id = :me AND kind = :hold) OR (kind = :hold AND #until <= :now)"
            else:
                condition += " OR (kind = :hold AND #until <= :now)"
            values.update({":hold": "hold", ":now": int(now.timestamp())})
            items.append(
                {
                    "Put": {
                        "TableName": self.table.name,
                        "Item": item,
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#until": "until"},
                        "ExpressionAttributeValues": values,
                    }
                }
            )
        client = self.table.meta.client
        self._count()
        try:
            client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise SlotTaken(f"{slot.master} {slot.start.isoformat()}") from None
            raise

    def hold(self, slot: Slot, lead_id: str, now: datetime) -> bool:
        minutes = self.business.booking.hold_min
        if minutes <= 0:
            return True
        try:
            self._write(slot, lead_id, "hold", now, now + timedelta(minutes=minutes))
            return True
        except SlotTaken:
            return False

    def release(self, slots: list[Slot], lead_id: str, keep: Slot | None = None) -> None:
        kept = {(k["pk"], k["sk"]) for k in self._cell_keys(keep)} if keep else set()
        keys: dict[tuple[str, str], dict[str, str]] = {}
        for slot in slots:  # the offered slots of one master overlap: each cell once
            for key in self._cell_keys(slot):
                if (key["pk"], key["sk"]) not in kept:
                    keys.setdefault((key["pk"], key["sk"]), key)
        values = {":me": lead_id, ":hold": "hold"}
        cells = list(keys.values())
        for i in range(0, len(cells), MAX_CELLS):
            self._delete(cells[i : i + MAX_CELLS], "lead_id = :me AND kind = :hold", values)

    def _delete(
        self, keys: list[dict[str, str]], condition: str, values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """The cells that are still this lead's: one transaction; when some are not (a hold that ran
        out and was taken), cell by cell."""
        if not keys:
            return
        client = self.table.meta.client
        self._count()
        try:
            client.transact_write_items(
                TransactItems=[
                    {"Delete": {"TableName": self.table.name, "Key": key, "ConditionExpression": condition,
                                "ExpressionAttributeValues": values, **({"ExpressionAttributeNames": names} if names else {})}}
                    for key in keys
                ]
            )  # fmt: skip
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
        for key in keys:
            self._count()
            try:
                self.table.delete_item(
                    Key=key, ConditionExpression=condition, ExpressionAttributeValues=values,
                    **({"ExpressionAttributeNames": names} if names else {}),
                )  # fmt: skip
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise

    def book(self, slot: Slot, lead: Lead, now: datetime) -> Booked:
        self._write(slot, lead.lead_id, "booking", now, None)
        return Booked(slot, f"{slot.master}@{slot.start.isoformat()}")

    def cancel(self, lead: Lead) -> None:
        if not lead.booking_ref or "@" not in lead.booking_ref:
            return
        master, _, start = lead.booking_ref.partition("@")
        begin = datetime.fromisoformat(start)
        service = self.business.service(lead.service)
        minutes = service.duration_min if service and service.duration_min else self.business.booking.step_min
        # Only the cells of this visit (its start): on a move to an overlapping time the new
        # visit's cells are the same lead's and must stay.
        self._delete(
            self._cell_keys(Slot(begin, master, minutes)), "lead_id = :me AND #start = :start",
            {":me": lead.lead_id, ":start": start}, {"#start": "start"},
        )  # fmt: skip
