"""Where a lead's first-reply time goes, stage by stage.

- gateway: the webhook POST as its sender sees it (ingest verifies, stores, enqueues, answers);
- queue wait: the inbound message's SentTimestamp on the score queue → the score invocation that
  got it starts (the poller's receive plus waiting for a free score worker);
- score: that invocation's start → the first reply recorded (the reply's claimed_at);
- route: the LeadReady's SentTimestamp on the route queue → the owner's card sent.

The stack reports each invocation (function, event, the instant its handler started); SQS
records carry SentTimestamp. Times are wall-clock epoch seconds; the leadflow clock the
conversation table speaks is converted with the offset measured at the start (speed 1).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (channel, digits of the client's id): how the bench finds its leads again


def digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def inbound_keys(body: dict) -> set[Key]:
    contact = body.get("contact") or {}
    ids = (contact.get("channel_user_id"), contact.get("phone"), body.get("chat_id"))
    return {(str(body.get("channel")), digits(v)) for v in ids if digits(v)}


@dataclass
class Stages:
    score_enqueued: dict[Key, float] = field(default_factory=dict)
    score_started: dict[Key, float] = field(default_factory=dict)
    route_enqueued: dict[str, float] = field(default_factory=dict)  # lead_id → SentTimestamp
    gateway_s: dict[int, float] = field(default_factory=dict)  # bench lead seq → POST round trip
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def invoked(self, name: str, event: dict, started: float) -> None:
        """Called for every invocation; the first delivery of a message counts (not a retry)."""
        if name not in ("score", "route"):
            return
        with self._lock:
            for record in event.get("Records", []):
                try:
                    body = json.loads(record["body"])
                    sent = int(record["attributes"]["SentTimestamp"]) / 1000
                except (KeyError, ValueError, TypeError):
                    continue
                if name == "score" and body.get("type") == "inbound":
                    for key in inbound_keys(body):
                        self.score_enqueued.setdefault(key, sent)
                        self.score_started.setdefault(key, started)
                elif name == "route" and body.get("type") == "lead_ready":
                    self.route_enqueued.setdefault(body["lead_id"], sent)

    def clear(self) -> None:
        with self._lock:
            self.score_enqueued.clear()
            self.score_started.clear()
            self.route_enqueued.clear()
            self.gateway_s.clear()
