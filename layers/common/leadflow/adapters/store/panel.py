"""The owner's panel: one-time login links and sessions (StaffTable, pk ``pk``):

``login#<sha256 of token>``    a login link not yet spent: staff id, expires_at (wall time, TTL)
``session#<sha256 of id>``     a session: staff id, csrf token, generation, expires_at (TTL)
``staff#<id>``.panel_gen       bumped when a member is deactivated: their sessions end at once
``ics#<sha256 of token>``      a booking's «добавить в календарь» link: lead id, expires_at
``tgapp#<hash>``               a Telegram Mini App's initData already used to open a session (TTL)

Only hashes of the secrets are stored, so a read of the table gives nobody a working link or
cookie. TTL deletes expired items eventually; expiry is also checked on every read.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.store._dynamo import is_conditional_failure, plain, spend_once


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    staff_id: str
    csrf: str
    expires_at: int


class PanelStore:
    def __init__(self, table: Any):
        self.table = table

    # ------------------------------------------------------------------ login links
    def issue_login(self, staff_id: str, expires_at: datetime) -> str:
        token = secrets.token_urlsafe(24)
        self.table.put_item(
            Item={
                "pk": f"login#{_digest(token)}",
                "staff_id": staff_id,
                "expires_at": int(expires_at.timestamp()),
            }
        )
        return token

    def login_is_valid(self, token: str, now: datetime) -> bool:
        """For the «Войти» page: says nothing about whose link it is, spends nothing."""
        item = self.table.get_item(Key={"pk": f"login#{_digest(token)}"}, ConsistentRead=True).get("Item")
        return bool(item) and int(item["expires_at"]) > int(now.timestamp())

    def spend_login(self, token: str, now: datetime) -> str | None:
        """The staff id of a valid, unspent link; the link is spent (a conditional delete: of two
        concurrent POSTs of one link exactly one wins)."""
        spent = spend_once(self.table, f"login#{_digest(token)}", int(now.timestamp()))
        return str(spent["staff_id"]) if spent else None

    def first_use(self, key: str, expires_at: datetime) -> bool:
        """True the first time ``key`` is used (a Mini App's signed initData opens one session);
        a conditional put: of two concurrent uses one wins."""
        try:
            self.table.put_item(
                Item={"pk": f"tgapp#{_digest(key)}", "expires_at": int(expires_at.timestamp())},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if is_conditional_failure(exc):
                return False
            raise
        return True

    # ------------------------------------------------------------------ sessions
    def _generation(self, staff_id: str) -> int:
        item = self.table.get_item(
            Key={"pk": f"staff#{staff_id}"}, ProjectionExpression="panel_gen", ConsistentRead=True
        ).get("Item")
        return int(plain(item or {}).get("panel_gen", 0))

    def open_session(self, staff_id: str, expires_at: datetime) -> tuple[str, Session]:
        """(the cookie value, the session)."""
        session_id = secrets.token_urlsafe(32)
        session = Session(staff_id, secrets.token_urlsafe(24), int(expires_at.timestamp()))
        self.table.put_item(
            Item={
                "pk": f"session#{_digest(session_id)}",
                "staff_id": staff_id,
                "csrf": session.csrf,
                "gen": self._generation(staff_id),
                "expires_at": session.expires_at,
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return session_id, session

    def session(self, session_id: str, now: datetime) -> Session | None:
        item = self.table.get_item(Key={"pk": f"session#{_digest(session_id)}"}, ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return None
        item = plain(item)
        if int(item["expires_at"]) <= int(now.timestamp()):  # TTL deletes late: expiry is checked here
            return None
        if int(item.get("gen", 0)) != self._generation(item["staff_id"]):
            return None  # the member was deactivated since
        return Session(item["staff_id"], item["csrf"], int(item["expires_at"]))

    def end_session(self, session_id: str) -> None:
        self.table.delete_item(Key={"pk": f"session#{_digest(session_id)}"})

    def end_sessions_of(self, staff_id: str) -> None:
        self.table.update_item(
            Key={"pk": f"staff#{staff_id}"},
            UpdateExpression="ADD panel_gen :one",
            ExpressionAttributeValues={":one": 1},
        )

    # ------------------------------------------------------------------ calendar links
    def keep_calendar_link(self, token: str, lead_id: str, expires_at: datetime) -> None:
        """The link answers for the lead until ``expires_at`` (a move pushes it later)."""
        self.table.put_item(
            Item={
                "pk": f"ics#{_digest(token)}",
                "lead_id": lead_id,
                "expires_at": int(expires_at.timestamp()),
            }
        )

    def calendar_lead(self, token: str, now: datetime) -> str | None:
        """The lead id a calendar link is for; None for an unknown or expired link."""
        item = self.table.get_item(Key={"pk": f"ics#{_digest(token)}"}, ConsistentRead=True).get("Item")
        if not item or int(item["expires_at"]) <= int(now.timestamp()):
            return None
        return str(item["lead_id"])
