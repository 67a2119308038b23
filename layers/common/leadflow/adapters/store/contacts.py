"""Contacts (ContactsTable, pk ``pk``).

``contact#<id>``           the person: name, phone, channels, open lead, history, consent
``id#<channel>#<user id>`` an identity → contact id (``id#phone#+7…`` joins channels by phone)
"""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.store._dynamo import is_conditional_failure, plain, storable


def contact_id_for(identity: str) -> str:
    return "C" + hashlib.sha256(identity.encode()).hexdigest()[:16]


class ContactStore:
    def __init__(self, table: Any):
        self.table = table

    def resolve(self, identities: list[str]) -> tuple[str, bool]:
        """The contact behind any of these identities (``telegram#123``, ``phone#+7…``), created if
        none is known. Returns (contact id, is_new). Safe under concurrency: identities are
        claimed with conditional writes, and the first identity's hash names a new contact, so
        a redelivered message resolves to the same contact.
        """
        keys = [{"pk": f"id#{i}"} for i in identities]
        found = self.table.meta.client.batch_get_item(
            RequestItems={self.table.name: {"Keys": keys, "ConsistentRead": True}}
        )["Responses"].get(self.table.name, [])
        known = {item["pk"]: item["contact_id"] for item in found}
        contact_id = next((known[f"id#{i}"] for i in identities if f"id#{i}" in known), None)
        is_new = contact_id is None
        if contact_id is None:
            contact_id = contact_id_for(identities[0])
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
        if is_new:
            try:
                self.table.put_item(
                    Item={"pk": f"contact#{contact_id}", "contact_id": contact_id, "leads": 0, "visits": 0},
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if not is_conditional_failure(exc):
                    raise
                is_new = False
        return contact_id, is_new

    def get(self, contact_id: str) -> dict:
        item = self.table.get_item(Key={"pk": f"contact#{contact_id}"}, ConsistentRead=True).get("Item")
        return plain(item) if item else {"contact_id": contact_id, "leads": 0, "visits": 0}

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

    def open_lead(self, contact_id: str, lead_id: str, replacing: str | None = None) -> bool:
        """Make lead_id the contact's open lead (in place of ``replacing``, a lead that is closed
        or went quiet); False if another lead got there first."""
        try:
            self.table.update_item(
                Key={"pk": f"contact#{contact_id}"},
                UpdateExpression="SET open_lead_id = :l ADD leads :one",
                ConditionExpression=("attribute_not_exists(open_lead_id) OR open_lead_id IN (:none, :old)"),
                ExpressionAttributeValues={":l": lead_id, ":one": 1, ":none": "", ":old": replacing or ""},
            )
            return True
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise

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
