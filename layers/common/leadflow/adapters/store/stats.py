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

PK = "facts"
SHARDS = 4
PREFIX = "L"


def shard_of(lead_id: str) -> int:
    return zlib.crc32(lead_id.encode()) % SHARDS


def sort_key(day: date, shard: int) -> str:
    return f"{day.isoformat()}#{shard}"


class StatsStore:
    def __init__(self, table: object):
        self.table = table

    def write(self, day: date, shard: int, facts: Iterable[LeadFact], gone: Iterable[str] = (), *,
              only_missing: bool = False) -> None:  # fmt: skip
        """One UpdateItem for a day's shard: SET each fact, REMOVE each lead id in ``gone``.
        ``only_missing``: keep facts already there (a rebuild never overwrites the stream's newer ones)."""
        names: dict[str, str] = {}
        values: dict[str, str] = {}
        sets, removes = [], []
        for n, fact in enumerate(facts):
            names[f"#s{n}"] = PREFIX + fact.lead_id
            values[f":s{n}"] = fact.to_json()
            sets.append(f"#s{n} = if_not_exists(#s{n}, :s{n})" if only_missing else f"#s{n} = :s{n}")
        for n, lead_id in enumerate(gone):
            names[f"#r{n}"] = PREFIX + lead_id
            removes.append(f"#r{n}")
        if not sets and not removes:
            return
        expression = " ".join(
            part
            for part in (sets and "SET " + ", ".join(sets), removes and "REMOVE " + ", ".join(removes))
            if part
        )
        kwargs: dict = {
            "Key": {"pk": PK, "sk": sort_key(day, shard)},
            "UpdateExpression": expression,
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
        while True:
            page = self.table.query(**kwargs)  # type: ignore[attr-defined]
            for item in page.get("Items", []):
                found.extend(LeadFact.from_json(v) for k, v in item.items() if k.startswith(PREFIX))
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
