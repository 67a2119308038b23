"""Named crash points at the boundaries between two writes (see the local stack for how they fire)."""

from __future__ import annotations

KNOWN = frozenset(
    {
        "ingest.after_store",
        "ingest.after_enqueue",
        "score.after_reply_sent",
        "score.before_hand_on",
        "route.after_assign",
        "route.after_crm_push",
        "route.after_card_sent",
        "escalate.after_send",
        "remind.after_send",
        "workspace.after_action",
    }
)


def hit(name: str) -> None:
    """Placeholder until the local stack's failpoints land: does nothing."""
