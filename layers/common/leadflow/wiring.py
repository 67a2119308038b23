"""What a warm Lambda keeps between invocations: clients, stores, the business config.

Everything is built on first use (never at import time) and can be dropped with ``reset()``
when the environment changes (tests, the local stack).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from leadflow.adapters.crm import BuiltinCrm, Crm
from leadflow.adapters.outbound import Outbound, default_sender
from leadflow.adapters.queues import Queue, sqs_client
from leadflow.adapters.store import Store, default_store
from leadflow.adapters.store import reset as reset_store
from leadflow.business import BusinessConfig
from leadflow.settings import reset_caches, secret, settings

if TYPE_CHECKING:
    from leadflow.adapters.rate_limit import RateLimiter  # botocore: not on ingest's cold path


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
    return make_crm(business())


def make_crm(business: BusinessConfig) -> Crm:
    """Bitrix24 when BITRIX24_WEBHOOK_URL is set, else the built-in CRM (the leads table)."""
    url = secret("BITRIX24_WEBHOOK_URL")
    if not url:
        return BuiltinCrm()
    import requests

    from leadflow.adapters.crm.bitrix24 import Bitrix24Client, portal_key
    from leadflow.adapters.crm.bitrix24_crm import Bitrix24Crm

    config = business.crm
    limiter = bitrix24_limiter(portal_key(url), config.requests_per_s, config.burst)
    client = Bitrix24Client(url, requests.Session(), limiter, mode=config.mode, tags_field=config.tags_field)
    return Bitrix24Crm(client)


def bitrix24_limiter(portal: str, rate_per_s: float, burst: int) -> RateLimiter:
    """One request budget per portal: in RATE_LIMIT_TABLE for every container of every function when
    the stack has the table, else per process; the same limiter for every client in this process."""
    from leadflow.adapters.rate_limit import portal_limiter

    table = settings().rate_limit_table
    if not table:
        return portal_limiter(portal, rate_per_s, burst)
    return portal_limiter(portal, rate_per_s, burst, dynamodb=dynamodb_client(), table=table)


@functools.cache
def dynamodb_client() -> Any:
    """A plain DynamoDB client (the store's resource client rewrites attribute values)."""
    import boto3  # AWS_ENDPOINT_URL(_DYNAMODB) points it at the local emulator

    return boto3.client("dynamodb")


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
        dynamodb_client,
        default_sender,
        sqs_client,
        default_ingest,
    ):
        cached.cache_clear()
    reset_store()
    rate_limit.reset()
    reset_caches()
