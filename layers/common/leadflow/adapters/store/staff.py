"""Staff runtime state (StaffTable, pk ``pk``), next to the config that says who works where:

``staff#<id>``            open leads (a set of lead ids), Telegram chat id (from onboarding), off-until
``chat#<chat id>``        Telegram chat → staff id (tells staff chats from client chats)
``rr#<group>``            round-robin ticket counter of one routing group
``invite#<code>``         a one-time onboarding code (expires)
``card#<chat>#<msg id>``  a lead card we sent → its lead (replies and buttons find the lead)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.store._dynamo import is_conditional_failure, plain, spend_once
from leadflow.domain.models import StaffState


class StaffStore:
    def __init__(self, table: Any):
        self.table = table

    def state(self, staff_ids: list[str]) -> dict[str, StaffState]:
        if not staff_ids:
            return {}
        keys = [{"pk": f"staff#{s}"} for s in dict.fromkeys(staff_ids)]
        items = self.table.meta.client.batch_get_item(
            RequestItems={self.table.name: {"Keys": keys, "ConsistentRead": True}}
        )["Responses"].get(self.table.name, [])
        found = {i["pk"].removeprefix("staff#"): plain(i) for i in items}
        return {s: _state(s, found.get(s, {})) for s in staff_ids}

    def open_lead_ids(self, staff_id: str) -> set[str]:
        item = self.table.get_item(Key={"pk": f"staff#{staff_id}"}, ConsistentRead=True).get("Item") or {}
        return {str(lead_id) for lead_id in item.get("lead_ids") or set()}

    def next_ticket(self, group: str) -> int:
        """An atomic counter per group: concurrent routes never draw the same ticket."""
        answer = self.table.update_item(
            Key={"pk": f"rr#{group}"},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        return int(answer["Attributes"]["n"])

    def take_lead(self, staff_id: str, lead_id: str, capacity: int | None = None) -> bool:
        """Count ``lead_id`` among staff_id's open leads, if under ``capacity`` (None: no limit).

        The open leads are a set of lead ids, so taking or releasing one lead twice (a redelivery,
        a retried step) counts once — the counter cannot drift."""
        kwargs: dict = {
            "Key": {"pk": f"staff#{staff_id}"},
            "UpdateExpression": "ADD lead_ids :lead",
            "ExpressionAttributeValues": {":lead": {lead_id}},
        }
        if capacity is not None:
            kwargs["ConditionExpression"] = (
                "attribute_not_exists(lead_ids) OR size(lead_ids) < :cap OR contains(lead_ids, :id)"
            )
            kwargs["ExpressionAttributeValues"].update({":cap": capacity, ":id": lead_id})
        try:
            self.table.update_item(**kwargs)
            return True
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise

    def release_lead(self, staff_id: str, lead_id: str) -> None:
        self.table.update_item(
            Key={"pk": f"staff#{staff_id}"},
            UpdateExpression="DELETE lead_ids :lead",
            ExpressionAttributeValues={":lead": {lead_id}},
        )

    def connect_chat(self, staff_id: str, chat_id: str) -> None:
        self.table.put_item(Item={"pk": f"chat#{chat_id}", "staff_id": staff_id})
        self.table.update_item(
            Key={"pk": f"staff#{staff_id}"},
            UpdateExpression="SET telegram_chat_id = :c",
            ExpressionAttributeValues={":c": chat_id},
        )

    def disconnect_chat(self, staff_id: str, chat_id: str) -> None:
        self.table.delete_item(Key={"pk": f"chat#{chat_id}"})
        self.table.update_item(Key={"pk": f"staff#{staff_id}"}, UpdateExpression="REMOVE telegram_chat_id")

    def staff_for_chat(self, chat_id: str) -> str | None:
        item = self.table.get_item(Key={"pk": f"chat#{chat_id}"}).get("Item")
        return item["staff_id"] if item else None

    def set_off_until(self, staff_id: str, until: datetime | None) -> None:
        if until is None:
            self.table.update_item(Key={"pk": f"staff#{staff_id}"}, UpdateExpression="REMOVE off_until")
        else:
            self.table.update_item(
                Key={"pk": f"staff#{staff_id}"},
                UpdateExpression="SET off_until = :u",
                ExpressionAttributeValues={":u": until.isoformat()},
            )

    def add_invite(self, code: str, staff_id: str, expires_at: datetime) -> None:
        self.table.put_item(
            Item={"pk": f"invite#{code}", "staff_id": staff_id, "expires_at": int(expires_at.timestamp())}
        )

    def redeem_invite(self, code: str, now: datetime) -> str | None:
        """The staff id of a valid, unused invite; the invite is consumed (one time)."""
        spent = spend_once(self.table, f"invite#{code}", int(now.timestamp()))
        return str(spent["staff_id"]) if spent else None

    def remember_card(self, chat_id: str, message_id: str, lead_id: str) -> None:
        self.table.put_item(Item={"pk": f"card#{chat_id}#{message_id}", "lead_id": lead_id})

    def lead_for_card(self, chat_id: str, message_id: str) -> str | None:
        item = self.table.get_item(Key={"pk": f"card#{chat_id}#{message_id}"}).get("Item")
        return item["lead_id"] if item else None


def _state(staff_id: str, item: dict) -> StaffState:
    # Items written before open leads became a set of ids carry a bare counter: it no longer
    # counts (a counter cannot be reconciled with the ids), the set does.
    lead_ids = item.get("lead_ids") or set()
    return StaffState.model_validate(
        {
            **{k: v for k, v in item.items() if k != "open_leads"},
            "staff_id": staff_id,
            "open_leads": len(lead_ids),
        }
    )
