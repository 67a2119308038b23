"""Leads (LeadsTable, pk ``lead_id``; indexes ``by_day``: pk ``day`` (UTC date), sk ``received_at``;
``by_phone``: pk ``phone`` (E.164), sk ``received_at``; ``by_name``: pk ``name_initial`` (the first
letter of the client's name, folded), sk ``name_key`` (the folded name, ``#``, received_at); ``by_crm_id``).

Writes are optimistic: every item carries ``version`` and a save is conditional on the
version read, so two functions changing one lead never overwrite each other's work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from leadflow.adapters.store._dynamo import is_conditional_failure, plain, storable
from leadflow.domain.models import Lead


@dataclass(frozen=True)
class Changed:
    before: Lead
    lead: Lead  # as saved (or as read, when nothing changed)
    changed: bool


class LeadConflict(Exception):
    """Someone else changed the lead between our read and our write."""


def _item(lead: Lead) -> dict:
    data = storable(lead.model_dump(mode="json"))
    data["day"] = lead.received_at.date().isoformat()
    if lead.contact.phone:
        data["phone"] = lead.contact.phone  # the by_phone index
    folded = fold_name(lead.contact.name)
    if folded:  # the by_name index (a lead without a name, or anonymised, is not in it)
        data["name_initial"] = folded[0]
        data["name_key"] = f"{folded}#{lead.received_at.isoformat()}"
    data["received_at"] = lead.received_at.isoformat()
    return data


def fold_name(name: str | None) -> str:
    """A name as searched: case and «ё» folded, spaces squeezed («Ёлкина  Анна» → «елкина анна»)."""
    return " ".join((name or "").casefold().replace("ё", "е").split())


class LeadStore:
    def __init__(self, table: Any):
        self.table = table

    def get(self, lead_id: str) -> Lead | None:
        item = self.table.get_item(Key={"lead_id": lead_id}, ConsistentRead=True).get("Item")
        return Lead.model_validate(plain(item)) if item else None

    def create(self, lead: Lead) -> bool:
        """False when a lead with this id exists already (a redelivery)."""
        try:
            self.table.put_item(Item=_item(lead), ConditionExpression="attribute_not_exists(lead_id)")
            return True
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise

    def save(self, lead: Lead) -> Lead:
        """Write back a lead read earlier; raises LeadConflict if it changed meanwhile."""
        expected = lead.version
        updated = lead.model_copy(update={"version": expected + 1})
        try:
            self.table.put_item(
                Item=_item(updated),
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": expected},
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise LeadConflict(lead.lead_id) from None
            raise
        return updated

    def change(
        self,
        lead_id: str,
        change: Callable[[Lead], Lead | None],
        *,
        known: Lead | None = None,
        attempts: int = 5,
    ) -> Changed | None:
        """Read, apply ``change`` (None = nothing to do), save; retried on conflicts.

        ``known``: the lead as this step last read it, so the first attempt needs no read (a stale
        copy costs one failed conditional write and a read). None when there is no such lead."""
        lead = known
        for _ in range(attempts):
            if lead is None:
                lead = self.get(lead_id)
                if lead is None:
                    return None
            changed = change(lead.model_copy(deep=True))
            if changed is None:
                return Changed(lead, lead, False)
            try:
                return Changed(lead, self.save(changed), True)
            except LeadConflict:
                lead = None
        raise LeadConflict(lead_id)

    def mutate(self, lead_id: str, change: Callable[[Lead], Lead | None], attempts: int = 5) -> Lead | None:
        """``change`` for callers that need only the lead after it."""
        result = self.change(lead_id, change, attempts=attempts)
        return result.lead if result else None

    def by_crm_id(self, crm_id: str) -> Lead | None:
        page = self.table.query(
            IndexName="by_crm_id", KeyConditionExpression=Key("crm_id").eq(crm_id), Limit=1
        )
        items = page.get("Items", [])
        return self.get(items[0]["lead_id"]) if items else None

    def with_phone(self, phone: str) -> Iterator[Lead]:
        """Every lead that carries this number (E.164), oldest first, through the by_phone index."""
        kwargs: dict = {"IndexName": "by_phone", "KeyConditionExpression": Key("phone").eq(phone)}
        while True:
            page = self.table.query(**kwargs)
            for item in page.get("Items", []):
                yield Lead.model_validate(plain(item))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def named(self, start: str, limit: int = 200) -> list[Lead]:
        """Leads whose client's name starts with ``start`` (folded), through the by_name index."""
        folded = fold_name(start)
        if not folded:
            return []
        condition = Key("name_initial").eq(folded[0]) & Key("name_key").begins_with(folded)
        kwargs: dict = {"IndexName": "by_name", "KeyConditionExpression": condition}
        found: list[Lead] = []
        while len(found) < limit:
            page = self.table.query(**kwargs)
            found.extend(Lead.model_validate(plain(item)) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found[:limit]

    def received_between(self, first: date, last: date) -> Iterator[Lead]:
        """Leads received on the UTC days first..last, by day through the index (no scan)."""
        day = first
        while day <= last:
            kwargs: dict = {"IndexName": "by_day", "KeyConditionExpression": Key("day").eq(day.isoformat())}
            while True:
                page = self.table.query(**kwargs)
                for item in page.get("Items", []):
                    yield Lead.model_validate(plain(item))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            day += timedelta(days=1)
