"""What a warm Lambda keeps between invocations: clients, stores, the business config.

Everything is built on first use (never at import time) and can be dropped with ``reset()``
when the environment changes (tests, the local stack).
"""

from __future__ import annotations

import functools
from typing import Any

from leadflow.adapters.outbound import Outbound, default_sender
from leadflow.adapters.queues import Queue, sqs_client
from leadflow.adapters.store import Store, default_store
from leadflow.adapters.store import reset as reset_store
from leadflow.business import BusinessConfig
from leadflow.settings import reset_caches, secret, settings


def store() -> Store:
    return default_store()


def business() -> BusinessConfig:
    return store().config.get(settings().config_max_age_s)


@functools.cache
def score_queue() -> Queue:
    return Queue(sqs_client(), _required(settings().score_queue_url, "SCORE_QUEUE_URL"))


@functools.cache
def route_queue() -> Queue:
    return Queue(sqs_client(), _required(settings().route_queue_url, "ROUTE_QUEUE_URL"))


@functools.cache
def outbound() -> Outbound:
    return Outbound(store())


@functools.cache
def crm() -> Any:
    """Bitrix24 clients pace themselves through crm.rate_limit.portal_limiter: one budget in
    RATE_LIMIT_TABLE for every container of every function."""
    from leadflow.adapters.crm import make_crm

    return make_crm(business())


@functools.cache
def qualifier() -> Any:
    """Offline always; the LLM first when OPENAI_API_KEY is set (openai imported only then)."""
    from leadflow.steps.score import LLM_REFINE_WAIT_S, LlmWithFallback, offline_qualify

    key = secret("OPENAI_API_KEY")
    if not key:
        return offline_qualify
    from leadflow.adapters.llm import LlmQualifier, make_client

    cfg = settings()
    biz = business()
    budget = biz.qualify.llm_budget_s
    # The first reply waits `budget` for the LLM; the call itself may run on to refine the lead.
    patience = budget + LLM_REFINE_WAIT_S
    llm = LlmQualifier(
        make_client(key, cfg.openai_base_url, patience),
        cfg.openai_model,
        biz.services,
        biz.tz,
        budget_s=patience,
    )
    return LlmWithFallback(llm, budget)


def _required(value: str | None, name: str) -> str:
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def reset() -> None:
    from leadflow.adapters import rate_limit
    from leadflow.steps.ingest import default_ingest

    for cached in (
        score_queue,
        route_queue,
        outbound,
        crm,
        qualifier,
        default_sender,
        sqs_client,
        default_ingest,
    ):
        cached.cache_clear()
    reset_store()
    rate_limit.reset()
    reset_caches()
