"""Contacts (ContactsTable, pk ``pk``).

``contact#<id>``           the person: name, phone, channels, open lead, history, consent
``id#<channel>#<user id>`` an identity → contact id (``id#phone#+7…`` joins channels by phone)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.store._dynamo import is_conditional_failure, plain, storable
from leadflow.domain.models import ContactRecord


def contact_id_for(identity: str) -> str:
    return "C" + hashlib.sha256(identity.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Resolved:
    contact: ContactRecord
    is_new: bool
    peeked: dict[str, str]  # peeked identity → the contact it belongs to


def _record(contact_id: str, item: dict) -> ContactRecord:
    # An empty open_lead_id means "none" (a conditional write cannot compare with a missing value);
    # visits are the counted lead ids, plus a bare count written by earlier versions.
    return ContactRecord.model_validate(
        {
            **item,
            "contact_id": contact_id,
            "open_lead_id": item.get("open_lead_id") or None,
            "visits": int(item.get("visits") or 0) + len(item.get("visited") or ()),
        }
    )


class ContactStore:
    def __init__(self, table: Any):
        self.table = table

    def resolve(self, identities: list[str], *, peek: tuple[str, ...] = ()) -> Resolved:
        """The contact behind any of these identities (``telegram#123``, ``phone#+7…``), created if
        none is known. Safe under concurrency: identities are claimed with conditional writes, and
        the first identity's hash names a new contact, so a redelivered message resolves to the same
        contact. ``peek``: identities only looked up, never claimed (a phone typed in a message).

        One read for the common case: the identities, the peeked ones and the contact a new
        identity would name come back in one BatchGetItem."""
        candidate = contact_id_for(identities[0])
        keys = [{"pk": f"id#{i}"} for i in dict.fromkeys([*identities, *peek])]
        keys.append({"pk": f"contact#{candidate}"})
        found = self.table.meta.client.batch_get_item(
            RequestItems={self.table.name: {"Keys": keys, "ConsistentRead": True}}
        )["Responses"].get(self.table.name, [])
        items = {item["pk"]: item for item in found}
        known = {pk: item["contact_id"] for pk, item in items.items() if pk.startswith("id#")}
        contact_id = next((known[f"id#{i}"] for i in identities if f"id#{i}" in known), None)
        is_new = contact_id is None
        contact_id = contact_id or candidate
        for identity in identities:
            if f"id#{identity}" in known:
                continue
            try:
                self.table.put_item(
                    Item={"pk": f"id#{identity}", "contact_id": contact_id},
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if not is_conditional_failure(exc):
                    raise
        record_item = items.get(f"contact#{contact_id}")
        if record_item is not None or is_new:
            contact = _record(contact_id, plain(record_item) if record_item else {})
        else:
            contact = self.get(contact_id)
        peeked = {i: str(known[f"id#{i}"]) for i in peek if f"id#{i}" in known}
        return Resolved(contact, is_new and record_item is None, peeked)

    def owner_of(self, identity: str) -> str | None:
        """The contact an identity belongs to (``phone#+7…``), without claiming it."""
        item = self.table.get_item(Key={"pk": f"id#{identity}"}, ConsistentRead=True).get("Item")
        return str(item["contact_id"]) if item else None

    def get(self, contact_id: str) -> ContactRecord:
        item = self.table.get_item(Key={"pk": f"contact#{contact_id}"}, ConsistentRead=True).get("Item")
        return _record(contact_id, plain(item) if item else {})

    def update(self, contact_id: str, **fields: Any) -> None:
        fields = storable(fields)
        if not fields:
            return
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": v for i, v in enumerate(fields.values())}
        self.table.update_item(
            Key={"pk": f"contact#{contact_id}"},
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def open_lead(
        self, contact_id: str, lead_id: str, replacing: str | None = None, *,
        openings: list[datetime] = (), identities: list[str] = (),  # type: ignore[assignment]
    ) -> ContactRecord | None:  # fmt: skip
        """Make lead_id the contact's open lead (in place of ``replacing``, a lead that is closed
        or went quiet): the contact as written, or None if another lead got there first (what route
        needs to know of the client travels with the lead, so it reads no contact). In the same write the contact keeps
        when its recent leads were opened, every lead of its own and its identities — what
        forgetting a person or counting a flood needs, without a scan."""
        values: dict = {":l": lead_id, ":one": 1, ":none": "", ":old": replacing or "", ":lead": {lead_id}}
        sets = ["open_lead_id = :l", "last_lead_id = :l"]
        adds = ["leads :one", "lead_ids :lead"]
        if openings:
            sets.append("recent_openings = :openings")
            values[":openings"] = [at.isoformat() for at in openings]
        if identities:
            adds.append("identities :ids")
            values[":ids"] = set(identities)
        try:
            written = self.table.update_item(
                Key={"pk": f"contact#{contact_id}"},
                UpdateExpression=f"SET {', '.join(sets)} ADD {', '.join(adds)}",
                ConditionExpression=("attribute_not_exists(open_lead_id) OR open_lead_id IN (:none, :old)"),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return None
            raise
        return _record(contact_id, plain(written["Attributes"]))

    def forget(self, contact: ContactRecord, identities: set[str]) -> int:
        """Delete the contact and every identity that points at it; how many items went."""
        gone = 0
        for identity in sorted(identities | contact.identities):
            try:
                self.table.delete_item(
                    Key={"pk": f"id#{identity}"},
                    ConditionExpression="contact_id = :c",
                    ExpressionAttributeValues={":c": contact.contact_id},
                )
                gone += 1
            except ClientError as exc:
                if not is_conditional_failure(exc):
                    raise
        self.table.delete_item(Key={"pk": f"contact#{contact.contact_id}"})
        return gone + 1

    def count_visit(self, contact_id: str, lead_id: str) -> None:
        """The lead ended in a visit; a set of lead ids, so a retried step counts it once."""
        self.table.update_item(
            Key={"pk": f"contact#{contact_id}"},
            UpdateExpression="ADD visited :lead",
            ExpressionAttributeValues={":lead": {lead_id}},
        )

    def close_lead(self, contact_id: str, lead_id: str) -> None:
        try:
            self.table.update_item(
                Key={"pk": f"contact#{contact_id}"},
                UpdateExpression="SET open_lead_id = :none",
                ConditionExpression="open_lead_id = :l",
                ExpressionAttributeValues={":l": lead_id, ":none": ""},
            )
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
