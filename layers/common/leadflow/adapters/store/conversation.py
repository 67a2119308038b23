"""The conversation of each lead (ConversationTable, pk ``lead_id``, sk):

``in#<received_at>#<message id>``  a client message (text kept; never logged)
``out#<outbound id>``              an outbound message: claimed before sending, so a retried
                                    batch never sends it twice; ``status`` sending → sent/failed
``staff#<at>#<event id>``          something staff did (reply, button) — the lead's log
Messages that belong to no lead (a digest, a staff command answer) use pk ``-``.

Texts end with the business's retention (``expires_at``, the table's TTL). TTL deletes late — on
AWS within days, on YDB's Document API "usually within two days" — and an expired item is still
returned until then, so what is read checks the expiry itself: an expired text is never shown.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from leadflow import clock
from leadflow.adapters.store._dynamo import is_conditional_failure, plain, storable
from leadflow.clock import iso
from leadflow.domain.models import InboundMessage, OutboundMessage

NO_LEAD = "-"
ClaimResult = Literal["claimed", "sent", "in_flight", "stale"]


class ConversationStore:
    def __init__(self, table: Any, keep_days: int | None = None):
        self.table = table
        # How long texts are kept (business.retention): each item expires that long after it was
        # written (DynamoDB's TTL deletes it). None: kept until deleted.
        self.keep_days = keep_days

    def _expiry(self, at: datetime) -> int | None:
        return int((at + timedelta(days=self.keep_days)).timestamp()) if self.keep_days else None

    def add_inbound(self, lead_id: str, message: InboundMessage) -> bool:
        """False when this message is already on the lead (a redelivery)."""
        try:
            self.table.put_item(
                Item=storable(
                    {
                        "lead_id": lead_id,
                        "sk": f"in#{iso(message.received_at)}#{message.message_id}",
                        "direction": "in",
                        "channel": message.channel,
                        "text": message.text,
                        "media": message.media,
                        "transcribed": message.transcribed or None,  # the text is a voice message's words
                        "at": message.received_at.isoformat(),
                        "expires_at": self._expiry(message.received_at),
                    }
                ),
                ConditionExpression="attribute_not_exists(sk)",
            )
            return True
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise

    def claim_outbound(
        self, message: OutboundMessage, now: datetime, *, claim_until: float, stale: float | None = None
    ) -> ClaimResult:
        """Claim the right to send ``message`` until ``claim_until`` (wall-clock epoch seconds: the
        claiming invocation's own deadline, past which Lambda has killed it).

        'claimed' (go), 'sent' (done before), 'in_flight' (a live claim: retry later) or 'stale'
        (a claim whose invocation died mid-send: the message may have gone out). ``stale``: the
        lease of a stale claim seen before, to take it over (only that one, only once)."""
        lead = message.lead_id or NO_LEAD
        item = storable(
            {
                **message.model_dump(mode="json"),
                "lead_id": lead,
                "sk": f"out#{message.id}",
                "direction": "out",
                "status": "sending",
                "lease_until": Decimal(str(round(claim_until, 3))),
                "claimed_at": now.isoformat(),
                "expires_at": self._expiry(now),
            }
        )
        condition = "attribute_not_exists(sk) OR #s = :retry"
        values: dict[str, Any] = {":retry": "retry"}
        if stale is not None:
            condition += " OR (#s = :sending AND lease_until = :stale)"
            values.update({":sending": "sending", ":stale": Decimal(str(round(stale, 3)))})
        try:
            self.table.put_item(
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
            return "claimed"
        except ClientError as exc:
            if not is_conditional_failure(exc):
                raise
        current = self.table.get_item(Key={"lead_id": lead, "sk": f"out#{message.id}"}, ConsistentRead=True)[
            "Item"
        ]
        if current.get("status") in ("sent", "failed", "refused"):
            return "sent"
        if float(current.get("lease_until") or 0) < time.time():
            return "stale"
        return "in_flight"

    def is_recorded(self, message: OutboundMessage) -> bool:
        """This message was claimed or recorded before (a retry of the same id)."""
        item = self.table.get_item(
            Key={"lead_id": message.lead_id or NO_LEAD, "sk": f"out#{message.id}"},
            ProjectionExpression="sk",
        ).get("Item")
        return item is not None

    def lease_of(self, message: OutboundMessage) -> float:
        item = (
            self.table.get_item(
                Key={"lead_id": message.lead_id or NO_LEAD, "sk": f"out#{message.id}"}, ConsistentRead=True
            ).get("Item")
            or {}
        )
        return float(item.get("lease_until") or 0)

    def finish_outbound(self, message: OutboundMessage, status: str, at: datetime, **details: Any) -> None:
        """status: sent, failed (permanent; reason recorded) or retry (released for another try)."""
        fields = storable(
            {"status": status, "sent_at": at.isoformat() if status == "sent" else None, **details}
        )
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": v for i, v in enumerate(fields.values())}
        self.table.update_item(
            Key={"lead_id": message.lead_id or NO_LEAD, "sk": f"out#{message.id}"},
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def remember_provider_id(self, channel: str, provider_message_id: str, message: OutboundMessage) -> None:
        """So a delivery report (which names only the provider's id) finds our message."""
        self.table.put_item(
            Item={
                "lead_id": f"{channel}#{provider_message_id}",
                "sk": "ref",
                "message_lead_id": message.lead_id or NO_LEAD,
                "out_id": message.id,
            }
        )

    def by_provider_id(self, channel: str, provider_message_id: str) -> dict | None:
        ref = self.table.get_item(Key={"lead_id": f"{channel}#{provider_message_id}", "sk": "ref"}).get(
            "Item"
        )
        if not ref:
            return None
        item = self.table.get_item(Key={"lead_id": ref["message_lead_id"], "sk": f"out#{ref['out_id']}"}).get(
            "Item"
        )
        return plain(item) if item else None

    def set_delivery(self, lead_id: str, out_id: str, status: str, error: str | None) -> None:
        self.table.update_item(
            Key={"lead_id": lead_id, "sk": f"out#{out_id}"},
            UpdateExpression="SET delivery = :d, delivery_error = :e",
            ExpressionAttributeValues={":d": status, ":e": error or ""},
        )

    def add_staff_note(self, lead_id: str, event_id: str, at: datetime, **fields: Any) -> None:
        self.table.put_item(
            Item=storable(
                {
                    "lead_id": lead_id,
                    "sk": f"staff#{iso(at)}#{event_id}",
                    "direction": "staff",
                    "expires_at": self._expiry(at),
                    **fields,
                }
            )
        )

    def delete_lead(self, lead_id: str) -> int:
        """Every item of a lead's conversation deleted (texts, outbound records, staff notes)."""
        keys = [{"lead_id": lead_id, "sk": item["sk"]} for item in self.history(lead_id, expired_too=True)]
        with self.table.batch_writer() as batch:
            for key in keys:
                batch.delete_item(Key=key)
        return len(keys)

    def history(self, lead_id: str, *, expired_too: bool = False) -> list[dict]:
        """The whole conversation of a lead, grouped by kind (in#, out#, staff#) and in time order
        within each; a lead's conversation is tens of items, so all pages are read. Items past
        their retention only with ``expired_too`` (to delete them)."""
        kwargs: dict = {"KeyConditionExpression": Key("lead_id").eq(lead_id)}
        items: list[dict] = []
        now = clock.now().timestamp()
        while True:
            page = self.table.query(**kwargs)
            items.extend(plain(i) for i in page.get("Items", []) if expired_too or not _expired(i, now))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def outbound(self, lead_id: str) -> list[dict]:
        page = self.table.query(
            KeyConditionExpression=Key("lead_id").eq(lead_id) & Key("sk").begins_with("out#")
        )
        now = clock.now().timestamp()
        return [plain(i) for i in page.get("Items", []) if not _expired(i, now)]


def _expired(item: dict, now: float) -> bool:
    """Past its TTL but not deleted yet (TTL deletes late)."""
    expires_at = item.get("expires_at")
    return expires_at is not None and float(expires_at) <= now
