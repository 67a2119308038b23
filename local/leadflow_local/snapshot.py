"""`leadflow up --data DIR`: the stack's state kept across restarts.

The emulator keeps everything in memory, so a stopped stack would forget every lead. With a data
directory the stack writes DIR/snapshot.json — every item of every table, every message of every
queue (the ones being processed too) — when it stops and every SNAPSHOT_EVERY_S while it runs,
and loads it back when it starts. A message comes back as a new delivery (its receive count
starts again); the writes are atomic (a temporary file renamed over the old one), so a stack
killed while writing keeps the previous snapshot.

Clients' files (the media bucket) are kept beside it as plain files, DIR/media/<bucket>/<key>: an
object is written once (a key's bytes never change) and its file removed when the object is gone
(`leadflow forget`), so the folder holds what the bucket holds.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

SNAPSHOT_FILE = "snapshot.json"
MEDIA_DIR = "media"
SNAPSHOT_EVERY_S = 30
FORMAT = 1


class SnapshotError(RuntimeError):
    """The data directory holds something this version cannot load."""


def lock(data_dir: Path) -> Any:
    """Hold data_dir for this stack (released when the process ends): two stacks writing one
    snapshot would each overwrite the other's leads."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise SnapshotError(f"{data_dir} is used by another running `leadflow up`") from None
    return handle


def save(emulator: Any, data_dir: Path) -> dict[str, int]:
    """Write the emulator's tables and queues to data_dir; what was written, counted."""
    dynamodb = emulator.client("dynamodb")
    tables: dict[str, list[dict]] = {}
    for name in emulator.template.tables():
        items: list[dict] = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
            items.extend(page["Items"])
        tables[name] = items
    queues = emulator.queue_messages()
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / SNAPSHOT_FILE
    partial = target.with_suffix(".json.partial")
    partial.write_text(
        json.dumps({"format": FORMAT, "tables": tables, "queues": queues}, ensure_ascii=False),
        encoding="utf-8",
    )
    partial.chmod(0o600)  # personal data of the salon's clients
    os.replace(partial, target)
    return {
        "items": sum(len(items) for items in tables.values()),
        "messages": sum(len(m) for m in queues.values()),
        "files": _save_files(emulator, data_dir / MEDIA_DIR),
    }


def _save_files(emulator: Any, root: Path) -> int:
    """The buckets' objects as files under root: new ones written, gone ones removed."""
    s3 = emulator.client("s3")
    kept = 0
    for bucket in emulator.template.buckets():
        base = root / bucket
        keys: set[str] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys.update(item["Key"] for item in page.get("Contents", []) if _safe(item["Key"]))
        for key in keys:
            target = base / key
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            partial.chmod(0o600)
            os.replace(partial, target)
        if base.is_dir():
            for path in base.rglob("*"):
                if path.is_file() and path.relative_to(base).as_posix() not in keys:
                    path.unlink()  # deleted from the bucket (forget): gone from the disk too
        kept += len(keys)
    return kept


def _safe(key: str) -> bool:
    parts = PurePosixPath(key).parts
    return bool(parts) and not key.startswith("/") and ".." not in parts


def restore(emulator: Any, data_dir: Path) -> dict[str, int] | None:
    """Load data_dir's snapshot into a fresh emulator; None when there is none yet."""
    source = data_dir / SNAPSHOT_FILE
    if not source.exists():
        return None
    try:
        snapshot = json.loads(source.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SnapshotError(f"{source} is not a leadflow snapshot: {exc}") from exc
    if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
        raise SnapshotError(f"{source} is not a leadflow snapshot of format {FORMAT}")
    known_tables = set(emulator.template.tables())
    dynamodb = emulator.client("dynamodb")
    items = 0
    for table, rows in snapshot.get("tables", {}).items():
        if table not in known_tables:
            continue  # a table template.yaml no longer has
        for start in range(0, len(rows), 25):
            pending: dict[str, Any] = {
                table: [{"PutRequest": {"Item": row}} for row in rows[start : start + 25]]
            }
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        items += len(rows)
    sqs = emulator.client("sqs")
    messages = 0
    for queue, kept in snapshot.get("queues", {}).items():
        url = emulator.queue_urls.get(queue)
        if url is None:
            continue
        for message in kept:
            attributes = {
                name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
                for name, value in (message.get("attributes") or {}).items()
            }
            sqs.send_message(QueueUrl=url, MessageBody=message["body"], MessageAttributes=attributes)
            messages += 1
    return {"items": items, "messages": messages, "files": _restore_files(emulator, data_dir / MEDIA_DIR)}


def _restore_files(emulator: Any, root: Path) -> int:
    s3 = emulator.client("s3")
    restored = 0
    for bucket in emulator.template.buckets():
        base = root / bucket
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            if path.is_file() and not path.name.endswith(".partial"):
                s3.put_object(Bucket=bucket, Key=path.relative_to(base).as_posix(), Body=path.read_bytes())
                restored += 1
    return restored
