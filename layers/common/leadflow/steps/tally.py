"""tally: keeps the stats table's lead facts (domain/facts.py) as leads change, from the leads
table's DynamoDB stream — no write on the hot path (ingest, score, route pay nothing).

A batch's records are grouped by the lead's UTC day and shard; each group is ONE UpdateItem that
SETs the newest image's fact of every lead in it (REMOVE for a deleted lead). Writing the latest
image is idempotent, so a redelivered or retried batch changes nothing; a stream keeps one item's
records in order, and within a batch the highest ``version`` wins. A change that leaves the fact as
it was (a message folded in, a card sent, a reminder noted: most of a lead's writes) writes nothing. A record that cannot be read,
or a group whose write fails, is reported by its sequence number (ReportBatchItemFailures): Lambda
retries from there (BisectBatchOnFunctionError narrows it down) and after MaximumRetryAttempts
hands the batch's coordinates to the on-failure queue; `leadflow stats-rebuild` mends the days."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from leadflow import failpoints
from leadflow.adapters.store._dynamo import plain
from leadflow.adapters.store.leads import LeadStore
from leadflow.adapters.store.stats import StatsStore, shard_of
from leadflow.domain.facts import LeadFact, fact_of
from leadflow.domain.models import Lead
from leadflow.observability import logger


@dataclass(frozen=True)
class Change:
    sequence: str
    day: date
    lead_id: str
    fact: LeadFact | None  # None: the lead is gone
    unchanged: bool = False  # a change of what no number or list row shows (a message, a timer): no write


class BadRecord(ValueError):
    pass


def _image(raw: dict) -> dict:
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    return plain({key: deserialize(value) for key, value in raw.items()})


def read_change(record: dict) -> Change:
    """One stream record as the change it makes to the facts; BadRecord when it cannot be read."""
    try:
        data = record["dynamodb"]
        sequence = str(data["SequenceNumber"])
        if record.get("eventName") == "REMOVE":
            old = _image(data.get("OldImage") or {})
            if "day" not in old or "lead_id" not in old:  # NEW_AND_OLD_IMAGES brings the old image
                raise BadRecord("a REMOVE without the old image: the stream must be NEW_AND_OLD_IMAGES")
            return Change(sequence, date.fromisoformat(old["day"]), str(old["lead_id"]), None)
        image = _image(data["NewImage"])
        lead = Lead.model_validate(image)
        day = date.fromisoformat(image["day"]) if "day" in image else lead.received_at.date()
        fact = fact_of(lead)
        if record.get("eventName") == "MODIFY" and data.get("OldImage"):
            before = fact_of(Lead.model_validate(_image(data["OldImage"])))
            if replace(before, version=fact.version) == fact:
                return Change(sequence, day, lead.lead_id, fact, unchanged=True)
        return Change(sequence, day, lead.lead_id, fact)
    except BadRecord:
        raise
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise BadRecord(type(exc).__name__) from None


class Tally:
    def __init__(self, stats: StatsStore):
        self.stats = stats

    def handle_event(self, event: dict, context: Any = None) -> dict:
        records = event.get("Records", [])
        changes: list[Change] = []
        failed: list[str] = []
        for record in records:
            try:
                changes.append(read_change(record))
            except BadRecord as exc:
                sequence = str(record.get("dynamodb", {}).get("SequenceNumber", ""))
                logger.warning(
                    "tally: unreadable stream record", extra={"reason": str(exc), "sequence": sequence}
                )
                if sequence:
                    failed.append(sequence)
                break  # everything from here is retried: nothing after it is written out of order
        groups: dict[tuple[date, int], list[Change]] = defaultdict(list)
        for change in changes:
            if not change.unchanged:
                groups[(change.day, shard_of(change.lead_id))].append(change)
        for (day, shard), group in groups.items():
            last: dict[str, Change] = {}
            for change in group:  # in stream order: a later image of a lead replaces an earlier one
                known = last.get(change.lead_id)
                if (
                    known is None
                    or change.fact is None
                    or known.fact is None
                    or (change.fact.version >= known.fact.version)
                ):
                    last[change.lead_id] = change
            facts = [c.fact for c in last.values() if c.fact is not None]
            gone = [c.lead_id for c in last.values() if c.fact is None]
            try:
                self.stats.write(day, shard, facts, gone)
                failpoints.hit("tally.after_write")  # one day written, the next not: the retry writes both
            except (ClientError, BotoCoreError) as exc:
                logger.warning("tally: could not write a day's facts",
                               extra={"day": day.isoformat(), "error": type(exc).__name__})  # fmt: skip
                failed.append(min((c.sequence for c in group), key=int))
        if failed:
            first = min(failed, key=int)
            return {"batchItemFailures": [{"itemIdentifier": first}]}
        logger.debug("tally", extra={"records": len(records), "writes": len(groups)})
        return {"batchItemFailures": []}

    def rebuild(self, leads: LeadStore, first: date, last: date, *, overwrite: bool = False) -> int:
        """The facts of the leads received on the UTC days first..last, from the leads themselves
        (the by_day index, a Query a day: no Scan) — for a stack upgraded with leads already
        stored, or after a batch gave up. Without ``overwrite`` only missing facts are written, so
        a rebuild running beside the stream never puts back an older image. The leads counted."""
        done, day = 0, first
        while day <= last:
            shards: dict[int, list[LeadFact]] = defaultdict(list)
            for lead in leads.received_between(day, day):
                shards[shard_of(lead.lead_id)].append(fact_of(lead))
            for shard, facts in shards.items():
                self.stats.write(day, shard, facts, only_missing=not overwrite)
                done += len(facts)
            day += timedelta(days=1)
        return done
