"""DynamoDB access: the only place that knows the key layout of the tables.

Each table has one small class; ``Store`` holds them all for a function. Everything takes a
boto3 resource as an argument so tests can hand in one pointed at moto.
"""

from __future__ import annotations

from typing import Any

from leadflow.settings import Settings


class Store:
    def __init__(self, dynamodb: Any, cfg: Settings):
        # Imported here, not at the top: ingest imports only store.inbox and should not pay
        # for the rest (boto3.dynamodb.conditions alone is ~100 ms of cold start).
        from leadflow.adapters.store.config_store import ConfigStore
        from leadflow.adapters.store.contacts import ContactStore
        from leadflow.adapters.store.conversation import ConversationStore
        from leadflow.adapters.store.counters import CounterStore
        from leadflow.adapters.store.inbox import InboxStore
        from leadflow.adapters.store.leads import LeadStore
        from leadflow.adapters.store.panel import PanelStore
        from leadflow.adapters.store.staff import StaffStore
        from leadflow.adapters.store.stats import StatsStore
        from leadflow.adapters.store.timers import TimerStore

        self.leads = LeadStore(dynamodb.Table(cfg.leads_table))
        self.contacts = ContactStore(dynamodb.Table(cfg.contacts_table))
        self.conversation = ConversationStore(dynamodb.Table(cfg.conversation_table))
        self.staff = StaffStore(dynamodb.Table(cfg.staff_table))
        self.panel = PanelStore(dynamodb.Table(cfg.staff_table))  # login links and sessions
        self.timers = TimerStore(dynamodb.Table(cfg.timers_table))
        self.inbox = InboxStore(dynamodb.Table(cfg.inbox_table))
        self.stats = StatsStore(dynamodb.Table(cfg.stats_table))  # lead facts by day (the panel's numbers)
        self.config = ConfigStore(dynamodb.Table(cfg.config_table))
        self.counters = CounterStore(dynamodb.Table(cfg.rate_limit_table or "RateLimitTable"))


__all__ = ["Store"]
