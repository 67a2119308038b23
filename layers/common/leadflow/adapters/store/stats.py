"""Lead facts by day (StatsTable, pk ``pk``, sk ``sk``): one item per UTC day and shard,
pk ``facts``, sk ``<day>#<shard>``; each lead of that day is one attribute ``L<lead_id>`` whose
value is the fact as JSON. One Query reads a range of days, whatever the leads stored; a lead's
shard is a hash of its id, so one day's item stays far below DynamoDB's 400 KB (SHARDS × ~1,000
leads a day).

Facts are written by the consumer of the leads table's stream (steps/tally.py) and by
`leadflow stats-rebuild`; a write SETs the latest image, so writing it twice changes nothing."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import date

from boto3.dynamodb.conditions import Key

from leadflow.domain.facts import LeadFact
from leadflow.observability import logger

PK = "facts"
SHARDS = 4
CHUNK = 100  # leads per UpdateItem: its expression stays well under 4 KB
PREFIX = "L"


def shard_of(lead_id: str) -> int:
    return zlib.crc32(lead_id.encode()) % SHARDS


def sort_key(day: date, shard: int) -> str:
    return f"{day.isoformat()}#{shard}"


class StatsStore:
    def __init__(self, table: object):
        self.table = table

    def write(self, day: date, shard: int, facts: Iterable[LeadFact], gone: Iterable[str] = (), *,
              only_missing: bool = False) -> int:  # fmt: skip
        """SET each fact, REMOVE each lead id in ``gone``: one UpdateItem per CHUNK of them (an
        update expression may not pass 4 KB); the requests made. ``only_missing``: keep the facts
        already there (a rebuild never overwrites the newer ones the stream wrote meanwhile)."""
        entries: list[tuple[str, LeadFact | None]] = [(f.lead_id, f) for f in facts]
        entries += [(lead_id, None) for lead_id in gone]
        for start in range(0, len(entries), CHUNK):
            self._update(day, shard, entries[start : start + CHUNK], only_missing)
        return -(-len(entries) // CHUNK)

    def _update(
        self, day: date, shard: int, entries: list[tuple[str, LeadFact | None]], only_missing: bool
    ) -> None:
        names: dict[str, str] = {}
        values: dict[str, str] = {}
        sets: list[str] = []
        removes: list[str] = []
        for n, (lead_id, fact) in enumerate(entries):
            names[f"#a{n}"] = PREFIX + lead_id
            if fact is None:
                removes.append(f"#a{n}")
                continue
            values[f":a{n}"] = fact.to_json()
            sets.append(f"#a{n} = if_not_exists(#a{n}, :a{n})" if only_missing else f"#a{n} = :a{n}")
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if removes:
            clauses.append("REMOVE " + ", ".join(removes))
        kwargs: dict = {
            "Key": {"pk": PK, "sk": sort_key(day, shard)},
            "UpdateExpression": " ".join(clauses),
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        self.table.update_item(**kwargs)  # type: ignore[attr-defined]

    def between(self, first: date, last: date) -> list[LeadFact]:
        """The facts of the leads received on the UTC days first..last: one Query (and its pages)."""
        condition = Key("pk").eq(PK) & Key("sk").between(f"{first.isoformat()}#", f"{last.isoformat()}#~")
        kwargs: dict = {"KeyConditionExpression": condition}
        found: list[LeadFact] = []
        unreadable = 0
        while True:
            page = self.table.query(**kwargs)  # type: ignore[attr-defined]
            for item in page.get("Items", []):
                for key, value in item.items():
                    if key.startswith(PREFIX):
                        try:
                            found.append(LeadFact.from_json(value))
                        except (ValueError, TypeError, IndexError):
                            unreadable += 1  # another version's format: left out, never a broken page
            if "LastEvaluatedKey" not in page:
                if unreadable:
                    logger.warning("unreadable lead facts left out", extra={"facts": unreadable})
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
