"""Builds the adapters and steps from settings: the one place that knows which client, table,
queue and sender each step gets. Only ``functions/*/app.py`` and the local stack import it.

What a warm Lambda keeps between invocations (boto3 clients, the stores, senders, the CRM client)
is built on first use — never at import time — and dropped with ``reset()`` when the environment
changes (tests, the local stack). The steps themselves are built per invocation: they are cheap,
and each sees the business config as it is now (functions re-read it once a minute).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from leadflow.observability import logger
from leadflow.settings import env, reset_caches, secret, settings

if TYPE_CHECKING:  # the steps are imported when built: ingest's cold start loads only what it uses
    from leadflow.adapters.booking import BookingSystem
    from leadflow.adapters.channels.base import Sender
    from leadflow.adapters.crm import Crm
    from leadflow.adapters.media import Fetcher, MediaBucket
    from leadflow.adapters.messenger import Messenger
    from leadflow.adapters.payments import YookassaPayments
    from leadflow.adapters.queues import Queue
    from leadflow.adapters.rate_limit import RateLimiter
    from leadflow.adapters.sqs_batch import BatchFrame
    from leadflow.adapters.store import Store
    from leadflow.adapters.transcribe import Transcriber
    from leadflow.business import BusinessConfig
    from leadflow.domain.models import Attachment
    from leadflow.steps.escalate import EscalateStep
    from leadflow.steps.ingest import Ingest
    from leadflow.steps.media import ClientMedia
    from leadflow.steps.panel.views import Panel
    from leadflow.steps.remind import RemindStep
    from leadflow.steps.route import RouteStep
    from leadflow.steps.score import Qualifier, ScoreStep
    from leadflow.steps.tally import Tally
    from leadflow.steps.workspace import Workspace

# AWS calls must fail inside the function's Timeout (ingest has 10 s): a few seconds to connect,
# a few to answer, three tries in all — not botocore's 60 s defaults.
AWS_TIMEOUTS = {"connect_timeout": 2, "read_timeout": 5, "retries": {"max_attempts": 3, "mode": "standard"}}


def _aws_config() -> Any:
    from botocore.config import Config

    return Config(**AWS_TIMEOUTS)


# --------------------------------------------------------------------------- clients and stores


@functools.cache
def dynamodb() -> Any:
    import boto3  # AWS_ENDPOINT_URL(_DYNAMODB) points it at the local emulator

    return boto3.resource("dynamodb", config=_aws_config())


@functools.cache
def sqs() -> Any:
    import boto3  # AWS_ENDPOINT_URL(_SQS) points it at the local emulator

    return boto3.client("sqs", config=_aws_config())


@functools.cache
def store() -> Store:
    from leadflow.adapters.store import Store

    return Store(dynamodb(), settings())


def business() -> BusinessConfig:
    biz = store().config.get(settings().config_max_age_s)
    store().conversation.keep_days = biz.retention.personal_data_days  # texts expire by the config of now
    return biz


def score_queue() -> Queue:
    from leadflow.adapters.queues import Queue

    return Queue(sqs(), _required(settings().score_queue_url, "SCORE_QUEUE_URL"))


def route_queue() -> Queue:
    from leadflow.adapters.queues import Queue

    return Queue(sqs(), _required(settings().route_queue_url, "ROUTE_QUEUE_URL"))


def frame() -> BatchFrame:
    """The SQS batch frame of the function being invoked (its own dead-letter queue)."""
    from leadflow.adapters.sqs_batch import BatchFrame

    cfg = settings()
    queues = [url for url in (cfg.score_queue_url, cfg.route_queue_url) if url]
    return BatchFrame(sqs(), env("DLQ_URL"), int(env("LEADFLOW_MAX_RECEIVES") or 5), queues)


# --------------------------------------------------------------------------- outside services


@functools.cache
def sender(channel: str) -> Sender:
    """The channel's API when its token is set, else the outbox (recorded, not sent)."""
    from leadflow.adapters.messenger import OutboxSender

    cfg = settings()
    if cfg.outbox_only:
        return OutboxSender(channel)
    if channel == "telegram" and (token := secret("TELEGRAM_BOT_TOKEN")):
        from leadflow.adapters.channels.telegram import TelegramBot, TelegramSender

        return TelegramSender(TelegramBot(token, base_url=cfg.telegram_api_base), media=_stored_media)
    if channel == "whatsapp" and (token := secret("WHATSAPP_TOKEN")) and cfg.whatsapp_phone_number_id:
        from leadflow.adapters.channels.whatsapp import WhatsAppSender

        return WhatsAppSender(token, cfg.whatsapp_phone_number_id, base_url=cfg.meta_graph_base)
    if channel == "instagram" and (token := secret("INSTAGRAM_TOKEN")):
        from leadflow.adapters.channels.instagram import InstagramSender

        return InstagramSender(token, base_url=cfg.meta_graph_base)
    if channel == "vk" and (token := secret("VK_TOKEN")):
        from leadflow.adapters.channels.vk import VkSender

        return VkSender(token, base_url=cfg.vk_api_base)
    if channel == "manychat" and (token := secret("MANYCHAT_API_TOKEN")):
        from leadflow.adapters.channels.manychat import ManyChatSender

        return ManyChatSender(token, base_url=cfg.manychat_api_base)
    if channel == "chatfuel" and (token := secret("CHATFUEL_API_TOKEN")) and cfg.chatfuel_bot_id:
        from leadflow.adapters.channels.chatfuel import ChatfuelSender

        return ChatfuelSender(
            token, cfg.chatfuel_bot_id, base_url=cfg.chatfuel_api_base, block=cfg.chatfuel_block
        )
    if channel in ("sms", "call", "form") and cfg.sms_provider:
        from leadflow.adapters.channels.sms import SmsSender
        from leadflow.adapters.channels.sms_providers import SmsConfigError, make_sms_provider
        from leadflow.adapters.messenger import RefusingSender

        try:
            provider = make_sms_provider(cfg, secret)
        except SmsConfigError as exc:
            # Every SMS is recorded as failed with this reason (the owner sees it), nothing else stops.
            logger.error("sms is not configured", extra={"reason": str(exc)})
            return RefusingSender(channel, f"SMS не настроены: {exc}")
        if provider is not None:
            return SmsSender(provider, sender=cfg.sms_sender)
    return OutboxSender(channel)


# --------------------------------------------------------------------------- clients' files


@functools.cache
def s3() -> Any:
    import boto3  # AWS_ENDPOINT_URL(_S3) points it at the local emulator

    return boto3.client("s3", config=_aws_config())


def media_bucket() -> MediaBucket | None:
    """The bucket of clients' files: MEDIA_BUCKET of the functions that handle them (score, route,
    escalate — the local stack runs them in one process, so it is read per invocation, like
    DLQ_URL). Its S3 client is built on the first file."""
    name = env("MEDIA_BUCKET")
    return _bucket(name) if name else None


@functools.cache
def _bucket(name: str) -> MediaBucket:
    from leadflow.adapters.media import MediaBucket

    return MediaBucket(s3, name)


def _stored_media(lead_id: str, attachment: Attachment) -> bytes | None:
    bucket = media_bucket()
    return bucket.get(attachment.key(lead_id)) if bucket else None


@functools.cache
def media_fetcher(channel: str) -> Fetcher | None:
    """How score gets a client's file from its platform: with the channel's token (Telegram's
    getFile, WhatsApp's media URL), or by its direct link (Instagram, VK)."""
    cfg = settings()
    if channel == "telegram" and (token := secret("TELEGRAM_BOT_TOKEN")):
        from leadflow.adapters.channels.telegram import TelegramBot, TelegramMediaFetcher

        return TelegramMediaFetcher(TelegramBot(token, base_url=cfg.telegram_api_base))
    if channel == "whatsapp" and (token := secret("WHATSAPP_TOKEN")):
        from leadflow.adapters.channels.whatsapp import WhatsAppMediaFetcher

        return WhatsAppMediaFetcher(token, cfg.whatsapp_phone_number_id, base_url=cfg.meta_graph_base)
    if channel in ("instagram", "vk"):
        from leadflow.adapters.media import UrlFetcher

        return UrlFetcher(what=f"{channel} file")
    return None


@functools.cache
def transcriber() -> Transcriber | None:
    """Voice to text when TRANSCRIBE_API_KEY (or OPENAI_API_KEY) is set: TRANSCRIBE_BASE_URL (or
    OPENAI_BASE_URL), TRANSCRIBE_MODEL (whisper-1)."""
    key = secret("TRANSCRIBE_API_KEY") or secret("OPENAI_API_KEY")
    if not key:
        return None
    from leadflow.adapters.transcribe import Transcriber

    cfg = settings()
    return Transcriber(key, cfg.transcribe_base_url or cfg.openai_base_url, cfg.transcribe_model)


def client_media() -> ClientMedia:
    from leadflow.steps.media import ClientMedia

    return ClientMedia(media_fetcher, media_bucket(), transcriber())


def messenger(biz: BusinessConfig) -> Messenger:
    from leadflow.adapters.messenger import Messenger

    return Messenger(store(), biz, sender, sms_configured=bool(settings().sms_provider))


@functools.cache
def crm() -> Crm:
    return make_crm(business())


def make_crm(biz: BusinessConfig) -> Crm:
    """The CRM the config names (``crm.kind``); unset: Bitrix24 when BITRIX24_WEBHOOK_URL is set,
    else the built-in CRM (the leads table) — what configs without ``kind`` always meant."""
    from leadflow.adapters.crm import BuiltinCrm

    config = biz.crm
    kind = config.kind or ("bitrix24" if secret("BITRIX24_WEBHOOK_URL") else "builtin")
    if kind == "builtin":
        return BuiltinCrm()
    import requests

    if kind == "sheets":
        assert config.sheet is not None  # the config refuses kind: sheets without a sheet
        return make_sheets_crm(biz, config.sheet, requests.Session())
    primary: Crm
    if kind == "amocrm":
        from leadflow.adapters.crm.amocrm import AmoCrmClient
        from leadflow.adapters.crm.amocrm_crm import AmoCrm

        base_url = _required(settings().amocrm_base_url, "AMOCRM_BASE_URL")
        token = _required(secret("AMOCRM_TOKEN"), "AMOCRM_TOKEN")
        rate, burst = config.request_budget("amocrm")
        limiter = crm_limiter("amocrm", base_url, rate, burst)
        primary = AmoCrm(AmoCrmClient(base_url, token, requests.Session(), limiter), biz)
    else:
        from leadflow.adapters.crm.bitrix24 import Bitrix24Client, portal_key
        from leadflow.adapters.crm.bitrix24_crm import Bitrix24Crm

        url = _required(secret("BITRIX24_WEBHOOK_URL"), "BITRIX24_WEBHOOK_URL")
        rate, burst = config.request_budget("bitrix24")
        limiter = bitrix24_limiter(portal_key(url), rate, burst)
        client = Bitrix24Client(
            url, requests.Session(), limiter, mode=config.mode, tags_field=config.tags_field
        )
        primary = Bitrix24Crm(client)
    if config.mirror_sheet is None:
        return primary
    from leadflow.adapters.crm.mirrored import MirroredCrm
    from leadflow.adapters.crm.sheets_crm import SheetsCrm

    sheet = make_sheets_crm(biz, config.mirror_sheet, requests.Session())
    assert isinstance(sheet, SheetsCrm)
    return MirroredCrm(primary, sheet)


def make_sheets_crm(biz: BusinessConfig, sheet: Any, session: Any) -> Crm:
    from leadflow.adapters.crm.google_sheets import ServiceAccountToken, SheetsClient
    from leadflow.adapters.crm.sheets_crm import SheetsCrm

    cfg = settings()
    key_json = _required(secret("GOOGLE_SERVICE_ACCOUNT_JSON"), "GOOGLE_SERVICE_ACCOUNT_JSON")
    token = ServiceAccountToken(key_json, cfg.google_oauth_token_url, session)
    rate, burst = biz.crm.request_budget("sheets")
    # Google counts the quota per project and per user; the service account is the user.
    limiter = crm_limiter("sheets", token.email, rate, burst)
    return SheetsCrm(SheetsClient(cfg.google_sheets_api_base, token, session, limiter), sheet, biz)


def crm_limiter(kind: str, account: str, rate_per_s: float, burst: int) -> RateLimiter:
    """The request budget of one CRM account, shared like Bitrix24's (see ``bitrix24_limiter``)."""
    return bitrix24_limiter(f"{kind}:{account}", rate_per_s, burst)


def booking(biz: BusinessConfig) -> BookingSystem | None:
    """The business's booking system when it books for real (``booking.enabled``): YCLIENTS with its
    partner token, else the built-in calendar in BOOKINGS_TABLE. None: the assistant only repeats
    the client's wish and staff book."""
    if not biz.booking.enabled:
        return None
    if biz.booking.system == "yclients":
        token = secret("YCLIENTS_PARTNER_TOKEN")
        if not token:
            logger.warning(
                "booking.system is yclients but YCLIENTS_PARTNER_TOKEN is not set: no slots offered"
            )
            return None
        import requests

        from leadflow.adapters.booking.yclients import YclientsBooking

        return YclientsBooking(
            biz, requests.Session(), partner_token=token, user_token=secret("YCLIENTS_USER_TOKEN"),
            api_base=settings().yclients_api_base,
        )  # fmt: skip
    from leadflow.adapters.booking.builtin import BuiltinBooking

    return BuiltinBooking(dynamodb().Table(settings().bookings_table), biz)


def payments() -> YookassaPayments | None:
    """ЮKassa's API, to re-read a payment a notification names; None without the shop's credentials
    (then a notification is taken on its sender's address alone)."""
    shop_id, key = secret("YOOKASSA_SHOP_ID"), secret("YOOKASSA_SECRET_KEY")
    if not (shop_id and key):
        return None
    import requests

    from leadflow.adapters.payments import YookassaPayments

    return YookassaPayments(
        requests.Session(), shop_id=shop_id, secret_key=key, api_base=settings().yookassa_api_base
    )


def bitrix24_limiter(portal: str, rate_per_s: float, burst: int) -> RateLimiter:
    """One request budget per portal: in RATE_LIMIT_TABLE for every container of every function when
    the stack has the table, else per process; the same limiter for every client in this process."""
    from leadflow.adapters.rate_limit import portal_limiter

    table = settings().rate_limit_table
    if not table:
        return portal_limiter(portal, rate_per_s, burst)
    return portal_limiter(
        portal, rate_per_s, burst, dynamodb=dynamodb_client(), table=table,
        conflict_returns_item=settings().leadflow_platform != "yandex",
    )  # fmt: skip


@functools.cache
def dynamodb_client() -> Any:
    """A plain DynamoDB client (the store's resource client rewrites attribute values)."""
    import boto3  # AWS_ENDPOINT_URL(_DYNAMODB) points it at the local emulator

    return boto3.client("dynamodb", config=_aws_config())


@functools.cache
def qualifier() -> Qualifier:
    """Offline always; the LLM first when OPENAI_API_KEY is set (openai imported only then)."""
    from leadflow.steps.score import offline_qualify

    key = secret("OPENAI_API_KEY")
    if not key:
        return offline_qualify
    from leadflow.adapters.llm import LLM_REFINE_WAIT_S, LlmQualifier, LlmWithFallback, make_client
    from leadflow.domain.knowledge import facts_text

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
        facts=facts_text(biz),  # the only facts its answers to questions may use
    )
    return LlmWithFallback(llm, budget, offline_qualify)


# --------------------------------------------------------------------------- the steps


@functools.cache
def ingest_step() -> Ingest:
    """Ingest reads only its own table and queues: no business config, no secrets but the webhooks'."""
    from leadflow.adapters.store.inbox import InboxStore
    from leadflow.adapters.store.staff import StaffStore
    from leadflow.steps.ingest import Ingest

    cfg = settings()
    inbox = InboxStore(dynamodb().Table(cfg.inbox_table))
    staff = StaffStore(dynamodb().Table(cfg.staff_table))
    return Ingest(inbox, score_queue(), route_queue(), cfg.max_body_bytes, staff.staff_for_chat)


def score_step() -> ScoreStep:
    from leadflow.steps.score import ScoreStep

    if settings().sms_provider:
        sender("sms")  # checked at cold start: a broken SMS setup is logged once, not per lead
    biz = business()
    return ScoreStep(
        store(), messenger(biz), route_queue(), biz, qualifier(), frame(), client_media(), booking(biz),
        settings().public_base_url,
    )  # fmt: skip


def workspace(biz: BusinessConfig) -> Workspace:
    from leadflow.steps.workspace import Workspace

    return Workspace(store(), messenger(biz), crm(), biz, settings().public_base_url, booking(biz))


def route_step() -> RouteStep:
    from leadflow.steps.booking import Bookings
    from leadflow.steps.crm_sync import CrmSync
    from leadflow.steps.route import RouteStep
    from leadflow.steps.sms_reports import SmsReports
    from leadflow.steps.workspace import Workspace

    biz = business()
    outbox = messenger(biz)
    return RouteStep(
        store(), outbox, crm(), biz, frame(),
        Workspace(store(), outbox, crm(), biz, settings().public_base_url, booking(biz)),
        CrmSync(store(), crm(), biz, Bookings(store(), outbox, biz, booking(biz), settings().public_base_url),
                payments()),
        SmsReports(store(), outbox),
    )  # fmt: skip


def escalate_step() -> EscalateStep:
    from leadflow.steps.escalate import EscalateStep

    biz = business()
    router = route_step()
    return EscalateStep(store(), router.messenger, crm(), biz, route_queue(), router.reassign)


def remind_step() -> RemindStep:
    from leadflow.steps.remind import RemindStep

    biz = business()
    return RemindStep(store(), messenger(biz), crm(), biz)


def panel_step() -> Panel:
    from leadflow.adapters.dead_letters import DeadLetters
    from leadflow.steps.panel.views import Panel

    cfg = settings()
    queues = {}
    if cfg.score_dead_letter_queue_url and cfg.score_queue_url:
        queues["score"] = (cfg.score_dead_letter_queue_url, cfg.score_queue_url)
    if cfg.route_dead_letter_queue_url and cfg.route_queue_url:
        queues["route"] = (cfg.route_dead_letter_queue_url, cfg.route_queue_url)
    biz = business()
    facts_kept = cfg.leadflow_platform != "yandex"  # deploy/yandex feeds no stream to the tally yet
    return Panel(
        store(), biz, messenger(biz), crm(), DeadLetters(sqs(), queues), cfg.public_base_url,
        cfg.telegram_bot_username, lambda: secret("TELEGRAM_BOT_TOKEN"), facts_kept,
    )  # fmt: skip


def _required(value: str | None, name: str) -> str:
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def reset() -> None:
    from leadflow.adapters import rate_limit

    for cached in (
        dynamodb, dynamodb_client, sqs, s3, store, sender, crm, qualifier, ingest_step,
        _bucket, media_fetcher, transcriber,
    ):  # fmt: skip
        cached.cache_clear()
    rate_limit.reset()
    reset_caches()


def panel_handler(event: dict) -> Callable[[dict, Any], dict]:
    """The panel function takes two kinds of event: its pages (HTTP) and the leads table's stream
    (the tally); the tally's code is loaded only for a stream batch."""
    from leadflow.adapters.platform import is_stream_batch

    return tally_step().handle_event if is_stream_batch(event) else panel_step().handle_event


def tally_step() -> Tally:
    from leadflow.steps.tally import Tally

    return Tally(store().stats)
