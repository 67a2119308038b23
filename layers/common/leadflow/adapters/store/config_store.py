"""The business config as pushed by `leadflow config push` (ConfigTable, pk ``name``).

Functions read it through a small in-process cache with a max-age, so rules change without a
redeploy and a warm Lambda does not read it on every message.
"""

from __future__ import annotations

import time
from typing import Any

from leadflow.business import BusinessConfig, parse_business_config

NAME = "business"


class ConfigStore:
    def __init__(self, table: Any):
        self.table = table
        self._cached: tuple[float, BusinessConfig] | None = None

    def put(self, yaml_text: str) -> BusinessConfig:
        parsed = parse_business_config(yaml_text)
        self.table.put_item(Item={"name": NAME, "yaml": yaml_text})
        self._cached = None
        return parsed

    def yaml_text(self) -> str:
        """The stored config as written (the panel edits it and stores a new one)."""
        item = self.table.get_item(Key={"name": NAME}, ConsistentRead=True).get("Item")
        if not item:
            raise LookupError("no business config stored: run `leadflow config push FILE`")
        return str(item["yaml"])

    def get(self, max_age_s: float = 60) -> BusinessConfig:
        if self._cached and time.monotonic() - self._cached[0] < max_age_s:
            return self._cached[1]
        item = self.table.get_item(Key={"name": NAME}).get("Item")
        if not item:
            raise LookupError("no business config stored: run `leadflow config push FILE`")
        parsed = parse_business_config(item["yaml"], source="stored config")
        self._cached = (time.monotonic(), parsed)
        return parsed
