"""The business config as pushed by `leadflow config push` or saved in the panel (ConfigTable, pk
``name``):

``business``            the config in force: its YAML and its version number
``business#versions``   the version counter and the log of saves (who, when, what changed), newest last
``business#v<N>``       each saved version's YAML, so an earlier one can be viewed and restored

Functions read it through a small in-process cache with a max-age, so rules change without a
redeploy and a warm Lambda does not read it on every message.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from leadflow.adapters.store._dynamo import is_conditional_failure, plain
from leadflow.business import BusinessConfig, parse_business_config
from leadflow.domain.config_diff import describe_changes

NAME = "business"
LOG_KEEP = 50  # entries in the versions log; older versions stay readable by number


class ConfigChanged(Exception):
    """Someone stored another version since the one the caller started from."""


class ConfigStore:
    def __init__(self, table: Any):
        self.table = table
        self._cached: tuple[float, BusinessConfig] | None = None

    def put(
        self, yaml_text: str, who: str = "leadflow config push", *, based_on: int | None = None
    ) -> BusinessConfig:
        """Validate and store ``yaml_text`` as the config in force, as a new version. ``based_on``:
        the version the edit started from — ConfigChanged if another is in force now (of two
        panel saves at one moment exactly one wins; the loser's version is never listed)."""
        import yaml

        parsed = parse_business_config(yaml_text)
        before = self.table.get_item(Key={"name": NAME}, ConsistentRead=True).get("Item")
        old, new = (yaml.safe_load(before["yaml"]) if before else {}), yaml.safe_load(yaml_text)
        entry: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "who": who,
            "changed": _changed_sections(old, new),
            "summary": describe_changes(old, new) if before else ["первая версия"],
        }
        answer = self.table.update_item(
            Key={"name": f"{NAME}#versions"},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        version = int(answer["Attributes"]["n"])
        entry["version"] = version
        self.table.put_item(Item={"name": f"{NAME}#v{version}", "yaml": yaml_text, **entry})
        in_force: dict[str, Any] = {"Item": {"name": NAME, "yaml": yaml_text, "version": version}}
        if based_on is not None:
            in_force["ConditionExpression"] = "attribute_not_exists(#v) OR #v = :base"
            in_force["ExpressionAttributeNames"] = {"#v": "version"}
            in_force["ExpressionAttributeValues"] = {":base": based_on}
        try:
            self.table.put_item(**in_force)
        except ClientError as exc:
            if is_conditional_failure(exc):
                raise ConfigChanged(f"version {based_on} is no longer the one in force") from None
            raise
        self.table.update_item(
            Key={"name": f"{NAME}#versions"},
            UpdateExpression="SET #log = list_append(if_not_exists(#log, :empty), :entry)",
            ExpressionAttributeNames={"#log": "log"},
            ExpressionAttributeValues={":empty": [], ":entry": [entry]},
        )
        self._cached = None
        return parsed

    def yaml_text(self) -> str:
        """The stored config as written (the panel edits it and stores a new one)."""
        return self.current()[0]

    def current(self) -> tuple[str, int]:
        """The stored config as written and its version number (0: pushed before versions)."""
        item = self.table.get_item(Key={"name": NAME}, ConsistentRead=True).get("Item")
        if not item:
            raise LookupError("no business config stored: run `leadflow config push FILE`")
        return str(item["yaml"]), int(item.get("version") or 0)

    def versions(self) -> list[dict]:
        """The saves, newest first (at most the last LOG_KEEP)."""
        item = self.table.get_item(Key={"name": f"{NAME}#versions"}, ConsistentRead=True).get("Item") or {}
        return list(reversed(plain(item.get("log") or [])))[:LOG_KEEP]

    def version_yaml(self, version: int) -> str | None:
        item = self.table.get_item(Key={"name": f"{NAME}#v{version}"}).get("Item")
        return str(item["yaml"]) if item else None

    def get(self, max_age_s: float = 60) -> BusinessConfig:
        if self._cached and time.monotonic() - self._cached[0] < max_age_s:
            return self._cached[1]
        item = self.table.get_item(Key={"name": NAME}).get("Item")
        if not item:
            raise LookupError("no business config stored: run `leadflow config push FILE`")
        parsed = parse_business_config(item["yaml"], source="stored config")
        self._cached = (time.monotonic(), parsed)
        return parsed


def _changed_sections(before: Any, after: Any) -> list[str]:
    """The top-level sections that differ (``staff``, ``routing``, …): what a save changed."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    return sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
