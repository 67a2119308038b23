"""`leadflow doctor`: is every outside connection of a stack set up, and if not, what to do.

One check per function, each a line: ok, warning, problem or skipped (not configured). A check
asks the service with the stack's own settings and secrets (the same base URLs the senders use,
so tests point them at local stand-ins) and says what is wrong in words the person setting up
the salon can act on: which setting, which button in which product. The judging of an answer is
pure (``judge_*``); the calls around it are thin.

No secret is ever printed: URLs that carry one (Telegram's token, the Bitrix24 webhook code, SMS
credentials) are never shown, network errors are described by their kind rather than their text
(requests puts the URL in it), and every line passes through ``redact`` with the secrets doctor read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import requests

    from leadflow.business import BusinessConfig
    from leadflow.domain.models import StaffState
    from leadflow.settings import Settings
    from leadflow_local.client import Target

Status = Literal["ok", "warning", "problem", "skipped"]
TIMEOUT = (3.05, 8.0)  # connect, read (seconds): a doctor that hangs helps nobody
TELEGRAM_UPDATES = ("message", "callback_query")  # client messages; staff pressing card buttons
RECENT_ERROR = timedelta(hours=1)
REMEMBERED_ERROR = timedelta(hours=24)
MANY_PENDING = 100
LOW_SMS_BALANCE = 100.0  # roubles: a few dozen SMS
OPENAI_BASE = "https://api.openai.com/v1"
META_OBJECTS = {"whatsapp": "whatsapp_business_account", "instagram": "instagram"}


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    text: str


def ok(name: str, text: str) -> Check:
    return Check(name, "ok", text)


def warning(name: str, text: str) -> Check:
    return Check(name, "warning", text)


def problem(name: str, text: str) -> Check:
    return Check(name, "problem", text)


def skipped(name: str, text: str) -> Check:
    return Check(name, "skipped", text)


# --------------------------------------------------------------------------- HTTP


class Unreachable(Exception):
    """The service did not answer; the message names the host and the kind of failure only."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # decoded JSON, or None when the answer was not JSON


class Http:
    """GET/POST with short timeouts; failures become ``Unreachable`` with a printable reason."""

    def __init__(self, session: requests.Session | None = None, timeout: tuple[float, float] = TIMEOUT):
        if session is None:
            import requests

            session = requests.Session()
        self.session = session
        self.timeout = timeout

    def get(self, url: str, **kwargs: Any) -> Reply:
        return self._send("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Reply:
        return self._send("POST", url, **kwargs)

    def _send(self, method: str, url: str, **kwargs: Any) -> Reply:
        import requests

        host = urlsplit(url).hostname or "the service"
        try:
            answer = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise Unreachable(f"{host} did not answer within {self.timeout[1]:g} s") from None
        except requests.exceptions.SSLError:
            raise Unreachable(f"TLS error talking to {host}") from None
        except requests.ConnectionError:
            raise Unreachable(f"cannot connect to {host}") from None
        except requests.RequestException as exc:
            raise Unreachable(f"request to {host} failed ({type(exc).__name__})") from None
        try:
            body = answer.json()
        except ValueError:
            body = None
        return Reply(answer.status_code, body)


# --------------------------------------------------------------------------- what doctor checks against


@dataclass
class Setup:
    """A stack's settings and secrets, where its webhooks are, its staff — what the checks need."""

    settings: Settings
    secret: Callable[[str], str | None]
    webhook_base: str | None  # https://…/webhooks; None when nobody knows it
    public: bool  # webhook_base is what the internet calls (not a loopback address)
    business: Callable[[], BusinessConfig] | None = None  # None: no stack reached
    staff_state: Callable[[list[str]], dict[str, StaffState]] | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    secrets_prefix: str | None = None  # deployed: secrets live in SSM under it
    parameters: dict[str, str] = field(default_factory=dict)  # variable → the stack parameter setting it
    stack: str | None = None  # --stack NAME, for the commands doctor suggests

    def webhook(self, channel: str) -> str | None:
        return f"{self.webhook_base}/{channel}" if self.webhook_base else None

    def place(self, name: str) -> str:
        """Where the user changes a setting or secret, in words."""
        if name in self.parameters:
            return f"the stack parameter {self.parameters[name]} (sam deploy --parameter-overrides)"
        if self.secrets_prefix:
            return f"the SSM parameter {self.secrets_prefix.rstrip('/')}/{name}"
        return f"{name} (in the environment of `leadflow up`)"

    def command(self, text: str) -> str:
        return f"leadflow {text}" + (f" --stack {self.stack}" if self.stack else "")


def setup_for(target: Target | None) -> Setup:
    """The Setup of the stack this process is connected to (``client.reach``); without one, this
    shell's settings and PUBLIC_BASE_URL."""
    from leadflow import wiring
    from leadflow.settings import secret, settings

    public_base = os.environ.get("PUBLIC_BASE_URL")
    base = f"{public_base.rstrip('/')}/webhooks" if public_base else (target.webhook_base if target else None)
    setup = Setup(
        settings=settings(),
        secret=secret,
        webhook_base=base,
        public=base is not None and not _is_loopback(base),
        secrets_prefix=settings().secrets_prefix,
    )
    if target is not None:
        setup.business = wiring.business
        setup.staff_state = lambda ids: wiring.store().staff.state(ids)
    if target is not None and target.deployed:
        from leadflow_local.deployed import environment_sources

        setup.parameters = {v: key for v, (kind, key) in environment_sources().items() if kind == "parameter"}
        setup.stack = target.stack
    return setup


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def shown(url: str) -> str:
    """A URL as doctor prints it: without its query (a form's secret travels there)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return url.split("?", 1)[0]
    port = f":{parts.port}" if parts.port else ""  # and never a user:password@
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def compare_webhook(
    actual: str, expected: str | None, public: bool, channel: str
) -> tuple[Status, str] | None:
    """None when ``actual`` is our webhook (its query aside: a URL may name a branch); else how wrong it is."""
    if expected and public and shown(actual).rstrip("/") == expected.rstrip("/"):
        return None
    if expected and public:
        return "problem", f"points at {shown(actual)}, not this stack's {expected}"
    if urlsplit(actual).path.rstrip("/").endswith(f"/webhooks/{channel}"):
        return "warning", (
            f"points at {shown(actual)}; doctor cannot tell whether that reaches this stack (a tunnel?) — "
            "set PUBLIC_BASE_URL to the https address the internet uses to check it"
        )
    return "problem", f"points at {shown(actual)}, which is not a leadflow webhook (…/webhooks/{channel})"


def redact(text: str, secrets: Iterable[str]) -> str:
    for value in sorted(set(secrets), key=len, reverse=True):
        if value and len(value) >= 6:
            text = text.replace(value, "***")
    return text


# --------------------------------------------------------------------------- Telegram


def telegram_bot(http: Http, base: str, token: str, place: str) -> tuple[Check, dict | None]:
    name = "telegram bot"
    try:
        reply = http.get(f"{base.rstrip('/')}/bot{token}/getMe")
    except Unreachable as exc:
        return problem(name, f"{exc}: cannot check the bot token"), None
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status in (401, 404):
        return problem(name, f"Telegram does not know this bot token ({reply.status} "
                             f"{body.get('description') or 'Unauthorized'}): in @BotFather send /mybots → your bot "
                             f"→ API Token, and put the token in {place}"), None  # fmt: skip
    if not body.get("ok"):
        return problem(
            name, f"Telegram answered {reply.status}: {body.get('description') or 'no JSON'}"
        ), None
    bot = body.get("result") or {}
    return ok(name, f"@{bot.get('username')} («{bot.get('first_name', '')}») answers"), bot


def judge_telegram_webhook(info: dict, expected: str | None, public: bool, now: datetime, *,
                           secret_set: bool = True, setting: str = "TELEGRAM_WEBHOOK_SECRET") -> Check:  # fmt: skip
    name = "telegram webhook"
    url = str(info.get("url") or "")
    pending = int(info.get("pending_update_count") or 0)
    set_it = (
        f'curl "https://api.telegram.org/bot$TELEGRAM_BOT_TOKEN/setWebhook" -d url={expected or "<https://…/webhooks/telegram>"} '
        "-d secret_token=$TELEGRAM_WEBHOOK_SECRET"
    )
    if not url:
        return problem(name, f"no webhook is set, so leadflow never hears from the bot ({pending} updates wait "
                             f"for getUpdates): {set_it}")  # fmt: skip
    mismatch = compare_webhook(url, expected, public, "telegram")
    if mismatch is not None:
        status, text = mismatch
        return Check(name, status, text + (f" — point it here: {set_it}" if status == "problem" else ""))
    if not secret_set:
        return problem(name, f"TELEGRAM_WEBHOOK_SECRET is not set, so the stack refuses every update (403): "
                             f"put the secret_token you gave setWebhook in {setting}")  # fmt: skip
    allowed = info.get("allowed_updates")
    if isinstance(allowed, list) and (missing := [u for u in TELEGRAM_UPDATES if u not in allowed]):
        return problem(name, f"the webhook leaves out {', '.join(missing)} (allowed_updates): clients' messages or "
                             f"staff buttons never arrive — call setWebhook again without allowed_updates")  # fmt: skip
    error_at = info.get("last_error_date")
    if error_at:
        when = datetime.fromtimestamp(int(error_at), UTC)
        message = str(info.get("last_error_message") or "unknown error")
        said = f"«{message}» at {when:%Y-%m-%d %H:%M} UTC"
        if now - when < RECENT_ERROR and pending > 0:
            return problem(name, f"Telegram cannot deliver: {said}, {pending} updates waiting — "
                                 f"{_telegram_error_hint(message)}")  # fmt: skip
        if now - when < REMEMBERED_ERROR:
            return warning(name, f"last delivery error {said}; {pending} updates waiting — "
                                 f"{_telegram_error_hint(message)}")  # fmt: skip
    if pending >= MANY_PENDING:
        return warning(name, f"{pending} updates wait to be delivered to {shown(url)}")
    return ok(name, f"→ {shown(url)}, {pending} updates waiting")


def _telegram_error_hint(message: str) -> str:
    text = message.lower()
    if "403" in text or "401" in text:
        return ("the stack refuses Telegram: TELEGRAM_WEBHOOK_SECRET must equal the secret_token given to setWebhook "
                "(call setWebhook again with it)")  # fmt: skip
    if any(code in text for code in ("500", "502", "503", "504", "internal server error", "bad gateway")):
        return "the stack failed on the update: see the ingest function's log (`leadflow up` output or CloudWatch)"
    if "ssl" in text or "certificate" in text:
        return "Telegram does not trust the webhook's TLS certificate"
    if "timed out" in text or "timeout" in text or "refused" in text or "resolve" in text:
        return "the webhook URL does not answer: is the stack (or the tunnel to it) up?"
    return "see the ingest function's log"


def telegram_webhook(http: Http, base: str, token: str, setup: Setup) -> Check:
    try:
        reply = http.get(f"{base.rstrip('/')}/bot{token}/getWebhookInfo")
    except Unreachable as exc:
        return problem("telegram webhook", str(exc))
    body = reply.body if isinstance(reply.body, dict) else {}
    if not body.get("ok"):
        return problem(
            "telegram webhook", f"Telegram answered {reply.status}: {body.get('description') or 'no JSON'}"
        )
    return judge_telegram_webhook(
        body.get("result") or {}, setup.webhook("telegram"), setup.public, setup.now,
        secret_set=bool(setup.secret("TELEGRAM_WEBHOOK_SECRET")), setting=setup.place("TELEGRAM_WEBHOOK_SECRET"),
    )  # fmt: skip


# --------------------------------------------------------------------------- Meta (WhatsApp, Instagram)


def _graph_error(reply: Reply) -> tuple[int | None, str]:
    error = (reply.body or {}).get("error") if isinstance(reply.body, dict) else None
    if not isinstance(error, dict):
        return None, f"HTTP {reply.status}"
    return error.get("code"), str(error.get("message") or f"HTTP {reply.status}")


def meta_token(http: Http, base: str, token: str, channel: str, place: str) -> tuple[Check, bool]:
    """GET /me with the token: is it alive? (Meta's error code 190, whatever the HTTP status.)"""
    name = f"{channel} token"
    try:
        reply = http.get(f"{base.rstrip('/')}/me", params={"fields": "id,name"}, headers=_bearer(token))
    except Unreachable as exc:
        return problem(name, str(exc)), False
    if reply.status == 200 and isinstance(reply.body, dict) and reply.body.get("id"):
        return ok(name, f"valid ({reply.body.get('name') or reply.body['id']})"), True
    code, message = _graph_error(reply)
    if code == 190:
        how = ("Meta Business Suite → Settings → Users → System users → Generate new token (with "
               "whatsapp_business_messaging)") if channel == "whatsapp" else (
               "developers.facebook.com → your app → Instagram → API setup → Generate token")  # fmt: skip
        return problem(name, f"Meta refuses the token (190: {message}): make a new one in {how}, "
                             f"and put it in {place}"), False  # fmt: skip
    return problem(name, f"Meta answered {reply.status} (code {code}: {message})"), False


def judge_whatsapp_number(reply: Reply, phone_number_id: str, place: str) -> Check:
    name = "whatsapp number"
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status == 200 and body.get("id"):
        number = body.get("display_phone_number") or "?"
        label = f"{number} «{body.get('verified_name') or 'no verified name'}»"
        quality = body.get("quality_rating")
        if quality in ("RED", "YELLOW"):
            return warning(name, f"{label}: quality rating {quality} — Meta may limit what it sends "
                                 "(WhatsApp Manager → Phone numbers → Insights)")  # fmt: skip
        if body.get("code_verification_status") not in (None, "VERIFIED"):
            return warning(name, f"{label}: the number is not verified ({body['code_verification_status']}) — "
                                 "WhatsApp Manager → Phone numbers")  # fmt: skip
        return ok(name, f"{label}, quality {quality or 'unknown'}")
    code, message = _graph_error(reply)
    if code == 100:
        return problem(name, f"Meta has no phone number {phone_number_id} this token can see ({message}): copy "
                             f"«Phone number ID» (not the number itself) from developers.facebook.com → your app → "
                             f"WhatsApp → API Setup into {place}")  # fmt: skip
    return problem(name, f"Meta answered {reply.status} (code {code}: {message})")


def whatsapp_number(http: Http, base: str, token: str, phone_number_id: str, place: str) -> Check:
    fields = "display_phone_number,verified_name,quality_rating,code_verification_status"
    try:
        reply = http.get(
            f"{base.rstrip('/')}/{phone_number_id}", params={"fields": fields}, headers=_bearer(token)
        )
    except Unreachable as exc:
        return problem("whatsapp number", str(exc))
    return judge_whatsapp_number(reply, phone_number_id, place)


def judge_meta_subscription(
    subscriptions: list[dict], channel: str, expected: str | None, public: bool
) -> Check:
    """The app's webhook for one object (Meta's /{app}/subscriptions): ours, active, with messages."""
    name = f"{channel} webhook"
    kind = META_OBJECTS[channel]
    where = ("developers.facebook.com → your app → WhatsApp → Configuration → Webhook" if channel == "whatsapp"
             else "developers.facebook.com → your app → Instagram → Webhooks")  # fmt: skip
    fix = f"{where}: Callback URL {expected or '<https://…/webhooks/' + channel + '>'}, Verify token = META_VERIFY_TOKEN, subscribe to messages"
    entry = next((s for s in subscriptions if s.get("object") == kind), None)
    if entry is None:
        return problem(name, f"the app has no webhook for {kind}: {fix}")
    mismatch = compare_webhook(str(entry.get("callback_url") or ""), expected, public, channel)
    if mismatch is not None:
        status, text = mismatch
        return Check(name, status, text + (f" — {fix}" if status == "problem" else ""))
    if entry.get("active") is False:
        return problem(name, f"the webhook is switched off (active: false): {fix}")
    fields = [f.get("name") if isinstance(f, dict) else f for f in entry.get("fields") or []]
    if "messages" not in fields:
        return problem(name, f"the webhook is not subscribed to messages, so no client message arrives: {where} → "
                             "Webhook fields → messages → Subscribe")  # fmt: skip
    return ok(name, f"→ {shown(str(entry.get('callback_url')))}, messages subscribed")


def meta_webhooks(http: Http, base: str, token: str, channels: list[str], setup: Setup) -> list[Check]:
    """The app-level webhook subscriptions, read with the app's own token (its id and App secret)."""
    base = base.rstrip("/")
    app_secret = setup.secret("META_APP_SECRET")
    names = [f"{c} webhook" for c in channels]
    if not app_secret:
        text = (f"META_APP_SECRET is not set, so the stack refuses every WhatsApp/Instagram webhook (403): copy "
                f"App secret from developers.facebook.com → your app → App settings → Basic into "
                f"{setup.place('META_APP_SECRET')}")  # fmt: skip
        return [problem(n, text) for n in names]
    try:
        app = http.get(f"{base}/app", headers=_bearer(token))
        if app.status != 200 or not isinstance(app.body, dict) or not app.body.get("id"):
            code, message = _graph_error(app)
            return [
                warning(n, f"cannot find the token's app to read its webhooks (code {code}: {message})")
                for n in names
            ]
        app_id = str(app.body["id"])
        reply = http.get(f"{base}/{app_id}/subscriptions", headers=_bearer(f"{app_id}|{app_secret}"))
    except Unreachable as exc:
        return [problem(n, str(exc)) for n in names]
    if reply.status != 200 or not isinstance(reply.body, dict):
        code, message = _graph_error(reply)
        if code in (190, 102, 104):
            text = (f"Meta refuses META_APP_SECRET as app {app_id}'s secret ({message}), and so would the stack "
                    f"refuse Meta's webhooks: copy App secret from App settings → Basic into {setup.place('META_APP_SECRET')}")  # fmt: skip
            return [problem(n, text) for n in names]
        return [warning(n, f"cannot read app {app_id}'s webhooks (code {code}: {message})") for n in names]
    subscriptions = [s for s in reply.body.get("data") or [] if isinstance(s, dict)]
    return [judge_meta_subscription(subscriptions, c, setup.webhook(c), setup.public) for c in channels]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- VK

VK_API_VERSION = "5.199"
VK_ERRORS = {
    5: "VK refuses VK_TOKEN (invalid or revoked): make a community key in the community → Manage → API usage → "
       "Access tokens (rights: community messages, community management) and put it in {place}",
    15: "VK_TOKEN lacks the «community management» right, so doctor cannot read the Callback API settings: "
        "make a key with it in the community → Manage → API usage → Access tokens",
    27: "VK_TOKEN is a key this method refuses (group authorization failed): use a community key with "
        "«community management»",
    100: "VK does not know community {group}: put the community's numeric id in {group_place}",
    203: "VK_TOKEN has no access to community {group}: make the key in that community",
}  # fmt: skip


def judge_vk_servers(
    response: Any,
    expected: str | None,
    public: bool,
    vk_secret: str | None,
    group: str,
    place: Callable[[str], str] = str,
) -> tuple[Check, int | None]:
    """groups.getCallbackServers' answer: a server with our URL, confirmed, with our secret key.
    The server's id comes back when its event types are worth checking next."""
    name = "vk callback"
    where = "the community → Manage → API usage → Callback API"
    url = expected or "<https://…/webhooks/vk>"
    items = [i for i in (response or {}).get("items") or [] if isinstance(i, dict)]
    if not items:
        return problem(name, f"community {group} has no Callback API server: in {where} add one with the URL {url}, "
                             "confirm it, and set its secret key to VK_SECRET"), None  # fmt: skip
    judged = [(item, compare_webhook(str(item.get("url") or ""), expected, public, "vk")) for item in items]
    server, mismatch = next(((i, m) for i, m in judged if m is None), None) or next(
        ((i, m) for i, m in judged if m and m[0] == "warning"), (None, None)
    )
    if server is None:
        urls = ", ".join(shown(str(i.get("url") or "")) for i in items)
        return problem(name, f"no Callback API server of community {group} calls this stack (they call {urls}): "
                             f"in {where} set the URL to {url}"), None  # fmt: skip
    result = (
        ok(name, f"→ {shown(str(server.get('url')))}, confirmed")
        if mismatch is None
        else warning(name, mismatch[1])
    )
    status = server.get("status")
    if status == "wait":
        return warning(name, f"VK is waiting for the server to be confirmed: press «Confirm» in {where} "
                             "(VK_CONFIRMATION_CODE must be the string shown there)"), None  # fmt: skip
    if status == "failed":
        return problem(name, f"VK could not confirm the server (status failed): copy «String to be returned» from "
                             f"{where} into {place('VK_CONFIRMATION_CODE')}, then press «Confirm» again"), None  # fmt: skip
    if status != "ok":
        return problem(name, f"the server was added but never confirmed (status {status}): press «Confirm» in "
                             f"{where}"), None  # fmt: skip
    if vk_secret is not None and server.get("secret_key") != vk_secret:
        return problem(name, "the server's secret key is not VK_SECRET, so the stack refuses every callback (403): "
                             f"set «Secret key» in {where} to VK_SECRET, or {place('VK_SECRET')} to it"), None  # fmt: skip
    return result, int(server["id"]) if str(server.get("id", "")).isdigit() else None


def vk_callback(http: Http, setup: Setup, token: str) -> Check:
    name = "vk callback"
    group = (setup.settings.vk_group_id or "").strip()
    if not group:
        return warning(name, f"VK_GROUP_ID is not set, so doctor cannot check the Callback API (and callbacks of any "
                             f"community are taken): put the community's numeric id in {setup.place('VK_GROUP_ID')}")  # fmt: skip
    group = group.removeprefix("club").lstrip("-")
    base = setup.settings.vk_api_base.rstrip("/")

    def call(method: str, **params: Any) -> tuple[Any, Check | None]:
        try:
            reply = http.post(f"{base}/{method}", data={**params, "access_token": token, "v": VK_API_VERSION})
        except Unreachable as exc:
            return None, problem(name, str(exc))
        body = reply.body if isinstance(reply.body, dict) else {}
        if "error" in body:
            error = body["error"] or {}
            code = error.get("error_code")
            text = VK_ERRORS.get(int(code or 0), "VK answered error {code}: {message}").format(
                code=code, message=error.get("error_msg"), place=setup.place("VK_TOKEN"), group=group,
                group_place=setup.place("VK_GROUP_ID"),
            )  # fmt: skip
            return None, (warning if code in (15, 27) else problem)(name, text)
        if "response" not in body:
            return None, problem(name, f"VK answered HTTP {reply.status} without a response")
        return body["response"], None

    servers, failed = call("groups.getCallbackServers", group_id=group)
    if failed:
        return failed
    result, server_id = judge_vk_servers(
        servers, setup.webhook("vk"), setup.public, setup.secret("VK_SECRET"), group, setup.place
    )
    if result.status == "problem" or server_id is None:
        return result
    settings, failed = call("groups.getCallbackSettings", group_id=group, server_id=server_id)
    if failed:
        return failed
    events = (settings or {}).get("events") or {}
    if str(events.get("message_new", 0)) not in ("1", "True", "true"):
        return problem(name, "the server is not sent new messages: tick «Incoming message» (message_new) in the "
                             "community → Manage → API usage → Callback API → Event types")  # fmt: skip
    return result


# --------------------------------------------------------------------------- Bitrix24


def bitrix24_portal(webhook_url: str) -> str:
    """The portal and user of a webhook URL, without its secret code: ``portal.bitrix24.ru, user 1``."""
    parts = urlsplit(webhook_url)
    path = [p for p in parts.path.split("/") if p]
    user = path[1] if len(path) > 1 and path[0] == "rest" else "?"
    return f"{parts.hostname}, user {user}"


BITRIX24_WEBHOOK_PAGE = "Bitrix24 → Developer resources → Other → Inbound webhook"


def _bitrix24_failure(name: str, reply: Reply, place: str) -> Check:
    body = reply.body if isinstance(reply.body, dict) else {}
    code = str(body.get("error") or f"HTTP {reply.status}")
    said = f"{code}{': ' + body['error_description'] if body.get('error_description') else ''}"
    if code in ("NO_AUTH_FOUND", "INVALID_CREDENTIALS", "expired_token") or reply.status == 401:
        return problem(name, f"the portal refuses the webhook ({said}): it was deleted or the URL is mistyped — "
                             f"copy the URL of an inbound webhook from {BITRIX24_WEBHOOK_PAGE} into {place}")  # fmt: skip
    if code == "insufficient_scope":
        return problem(name, f"the webhook lacks the CRM permission ({said}): in {BITRIX24_WEBHOOK_PAGE} tick "
                             "«CRM (crm)» under permissions and save")  # fmt: skip
    if code == "ACCESS_DENIED":
        return problem(name, f"the portal refuses REST calls ({said}): the REST API needs a commercial plan")
    if code in ("QUERY_LIMIT_EXCEEDED", "OVERLOAD_LIMIT"):
        return warning(name, f"the portal is rate-limiting us ({said}); try again in a minute")
    return problem(name, f"the portal answered {reply.status} ({said})")


def bitrix24(http: Http, webhook_url: str, mode: str, place: str) -> list[Check]:
    """profile (the webhook works, its user is active), scope (crm granted), crm.settings.mode.get
    (classic CRM with leads, or simple without, as the config's crm.mode expects)."""
    base = webhook_url.rstrip("/") + "/"
    portal = bitrix24_portal(webhook_url)
    name, mode_name = "bitrix24 webhook", "bitrix24 crm mode"
    try:
        profile = http.post(base + "profile", json={})
        if profile.status != 200 or not isinstance(profile.body, dict):
            return [_bitrix24_failure(name, profile, place), skipped(mode_name, "the webhook does not work")]
        user = profile.body.get("result") or {}
        if not user:
            return [problem(name, f"{portal}: the webhook's user is deactivated — create the webhook under an active "
                                  f"user in {BITRIX24_WEBHOOK_PAGE}"), skipped(mode_name, "the webhook does not work")]  # fmt: skip
        scope = http.post(base + "scope", json={})
        granted = scope.body.get("result") if scope.status == 200 and isinstance(scope.body, dict) else None
        modes = http.post(base + "crm.settings.mode.get", json={})
    except Unreachable as exc:
        return [problem(name, str(exc)), skipped(mode_name, "the portal does not answer")]
    who = " ".join(v for v in (user.get("NAME"), user.get("LAST_NAME")) if v) or f"user {user.get('ID')}"
    if isinstance(granted, list) and "crm" not in granted:
        webhook = problem(name, f"{portal} ({who}): the webhook lacks the CRM permission (it has: "
                                f"{', '.join(granted) or 'nothing'}) — in {BITRIX24_WEBHOOK_PAGE} tick «CRM (crm)» and save")  # fmt: skip
    elif granted is None:
        webhook = warning(
            name, f"{portal} ({who}): works, but the portal did not list the webhook's permissions"
        )
    else:
        # Call-back tasks are CRM to-dos (crm.activity.todo.add): «crm» is the only permission needed.
        webhook = ok(name, f"{portal} ({who}), permissions: {', '.join(granted)}")
    if modes.status != 200 or not isinstance(modes.body, dict):
        return [webhook, _bitrix24_failure(mode_name, modes, place)]
    portal_mode = "simple" if str(modes.body.get("result")) == "2" else "classic"
    shown_mode = {"classic": "classic CRM (leads)", "simple": "simple CRM (deals and contacts, no leads)"}[
        portal_mode
    ]
    switch = "Bitrix24 → CRM → Settings → CRM mode"
    if mode == "classic" and portal_mode == "simple":
        return [webhook, problem(mode_name, f"the config says crm.mode: classic, but the portal runs {shown_mode}: set "
                                            f"crm.mode to auto (or simple), or switch the portal in {switch}")]  # fmt: skip
    if mode == "simple" and portal_mode == "classic":
        return [webhook, warning(mode_name, f"the config says crm.mode: simple, but the portal runs {shown_mode}: "
                                            "leads become deals; set crm.mode to auto to make leads")]  # fmt: skip
    return [webhook, ok(mode_name, f"{shown_mode}; config crm.mode: {mode}")]


def amocrm(http: Http, base_url: str, token: str, place: str) -> Check:
    """GET /api/v4/account with the long-lived token: the address and the token both work."""
    name = "amocrm"
    try:
        reply = http.get(base_url.rstrip("/") + "/api/v4/account", headers=_bearer(token))
    except Unreachable as exc:
        return problem(name, f"{exc} — check AMOCRM_BASE_URL (https://<subdomain>.amocrm.ru)")
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status == 200:
        return ok(name, f"account «{body.get('name', '?')}» ({body.get('subdomain', '?')}): the token works")
    if reply.status == 401:
        return problem(name, "amoCRM refuses the token (expired or revoked): amoCRM → Settings → Integrations → "
                             f"your integration → «Ключи и доступы» → generate a long-lived token into {place}")  # fmt: skip
    if reply.status == 402:
        return problem(name, "the amoCRM account is not paid: the API works on paid accounts only")
    if reply.status == 403:
        return problem(name, "amoCRM forbids this address (an IP restriction, or the integration was blocked "
                             "for too many requests)")  # fmt: skip
    if reply.status == 429:
        return warning(name, "amoCRM is rate-limiting us (7 requests a second); try again in a minute")
    return problem(
        name, f"amoCRM answered {reply.status} {body.get('detail') or body.get('title') or ''}".strip()
    )


def google_sheet(
    http: Http, key_json: str, token_url: str, api_base: str, spreadsheet_id: str, tab: str, place: str
) -> Check:
    """The key gets a token, and the sheet answers to it: shared with the service account, tab there."""
    from leadflow.adapters.crm.google_sheets import ServiceAccountToken, SheetsError, a1

    name = "google sheet"
    token = ServiceAccountToken(key_json, token_url, http.session, timeout_s=http.timeout[1])
    try:
        email = token.account.client_email
        access = token.get()
    except SheetsError as exc:
        return problem(name, f"{exc} — put the service account's JSON key into {place}")
    from urllib.parse import quote

    url = f"{api_base.rstrip('/')}/v4/spreadsheets/{spreadsheet_id}/values/{quote(a1(tab, '1:1'), safe='')}"
    try:
        reply = http.get(url, headers=_bearer(access))
    except Unreachable as exc:
        return problem(name, str(exc))
    error = reply.body.get("error") if isinstance(reply.body, dict) else None
    said = str(error.get("message")) if isinstance(error, dict) else f"HTTP {reply.status}"
    if reply.status == 200:
        return ok(name, f"sheet «{tab}» answers to {email}")
    if reply.status == 403:
        return problem(name, f"the sheet is not shared with {email} ({said}): open it → Share → add {email} as an "
                             "editor (and check that the Google Sheets API is enabled in the key's project)")  # fmt: skip
    if reply.status == 404:
        return problem(name, f"there is no spreadsheet {spreadsheet_id} ({said}): copy the sheet's address into "
                             "crm.sheet.spreadsheet_id")  # fmt: skip
    if reply.status == 400:
        return problem(name, f"the spreadsheet has no tab «{tab}» ({said}): fix crm.sheet.sheet")
    return problem(name, f"Google answered {reply.status} ({said})")


# --------------------------------------------------------------------------- SMS


def judge_sms_balance(provider: str, reply: Reply, place: dict[str, str]) -> Check:
    name = "sms"
    body = reply.body if isinstance(reply.body, dict) else {}
    if provider == "smsru":
        if body.get("status") == "OK":
            return _balance(provider, body.get("balance"), "sms.ru → Balance → Top up")
        code, text = body.get("status_code"), body.get("status_text") or f"HTTP {reply.status}"
        if code == 200:
            return problem(name, f"sms.ru refuses SMS_API_KEY ({code} {text}): copy api_id from sms.ru → "
                                 f"For developers into {place['SMS_API_KEY']}")  # fmt: skip
        return problem(name, f"sms.ru answered {code}: {text}")
    if "balance" in body:
        return _balance(provider, body.get("balance"), "smsc.ru → Top up")
    code, text = body.get("error_code"), body.get("error") or f"HTTP {reply.status}"
    if code == 2:
        return problem(name, f"SMSC refuses the login or password ({code} {text}): put the SMSC login in "
                             f"{place['SMS_LOGIN']} and its password (or the password's MD5) in {place['SMS_API_KEY']}")  # fmt: skip
    if code == 4:
        return problem(
            name, f"SMSC has blocked this IP address for a while ({code} {text}) — too many wrong logins"
        )
    if code == 9:
        return warning(name, f"SMSC asks to slow down ({code} {text}); try again in a minute")
    return problem(name, f"SMSC answered {code}: {text}")


def _balance(provider: str, raw: Any, top_up: str) -> Check:
    try:
        balance = float(raw)
    except (TypeError, ValueError):
        return warning("sms", f"{provider}: cannot read the balance ({raw!r})")
    if balance <= 0:
        return problem(
            "sms", f"{provider}: balance {balance:.2f} ₽ — every SMS to clients fails; top up ({top_up})"
        )
    if balance < LOW_SMS_BALANCE:
        return warning("sms", f"{provider}: balance {balance:.2f} ₽ is low; top up soon ({top_up})")
    return ok("sms", f"{provider}: balance {balance:.2f} ₽")


def sms(http: Http, setup: Setup) -> Check:
    provider = setup.settings.sms_provider
    place = {n: setup.place(n) for n in ("SMS_API_KEY", "SMS_LOGIN", "SMS_PROVIDER")}
    if not provider:
        return skipped("sms", "SMS_PROVIDER is not set: no SMS to clients")
    if provider == "aws":
        return skipped("sms", "AWS End User Messaging is not checked here: see the sandbox and spend limit in the "
                              "AWS console → End User Messaging SMS → Account")  # fmt: skip
    key = setup.secret("SMS_API_KEY")
    if provider == "smsru":
        if not key:
            return problem(
                "sms", f"SMS_PROVIDER=smsru needs SMS_API_KEY (sms.ru api_id) in {place['SMS_API_KEY']}"
            )
        url, data = (
            f"{(setup.settings.sms_api_base or 'https://sms.ru').rstrip('/')}/my/balance",
            {"api_id": key, "json": 1},
        )
    elif provider == "smsc":
        login = setup.secret("SMS_LOGIN")
        if not key or not login:
            return problem("sms", f"SMS_PROVIDER=smsc needs SMS_LOGIN and SMS_API_KEY (the password) in "
                                  f"{place['SMS_LOGIN']} and {place['SMS_API_KEY']}")  # fmt: skip
        base = (setup.settings.sms_api_base or "https://smsc.ru").rstrip("/")
        url, data = f"{base}/sys/balance.php", {"login": login, "psw": key, "fmt": 3}
    else:
        return problem(
            "sms", f"SMS_PROVIDER={provider} is none of smsru, smsc, aws: fix {place['SMS_PROVIDER']}"
        )
    try:
        reply = http.post(url, data=data)  # a form: credentials stay out of URLs and access logs
    except Unreachable as exc:
        return problem("sms", str(exc))
    return judge_sms_balance(provider, reply, place)


# --------------------------------------------------------------------------- LLM


def judge_llm(reply: Reply, model: str, place: str) -> Check:
    name = "llm"
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status == 200:
        ids = [m.get("id") for m in body.get("data") or [] if isinstance(m, dict)]
        if ids and model not in ids:
            listed = ", ".join(str(i) for i in ids[:6]) + (", …" if len(ids) > 6 else "")
            return warning(name, f"the endpoint answers, but does not list the model {model} (it has: {listed}): "
                                 "set OPENAI_MODEL to one it has")  # fmt: skip
        return ok(name, f"the endpoint answers; model {model}")
    error = body.get("error")
    code = (error.get("code") or error.get("type")) if isinstance(error, dict) else None
    if reply.status == 404:
        return warning(name, "the endpoint has no /models, so doctor cannot tell whether the key works")
    if reply.status in (401, 403):
        return problem(name, f"the endpoint refuses OPENAI_API_KEY ({reply.status} {code or ''}): make a new key "
                             f"(platform.openai.com → API keys, or your provider's console) and put it in {place}; "
                             "until then the offline qualifier answers")  # fmt: skip
    if reply.status == 429 and code == "insufficient_quota":
        return problem(name, "the LLM account is out of credit (insufficient_quota): top it up in the provider's "
                             "billing page; until then the offline qualifier answers")  # fmt: skip
    if reply.status == 429:
        return warning(
            name, "the endpoint is rate-limiting us (429); the offline qualifier answers meanwhile"
        )
    return problem(name, f"the endpoint answered {reply.status} {code or ''}".rstrip())


def llm(http: Http, setup: Setup) -> Check:
    key = setup.secret("OPENAI_API_KEY")
    if not key:
        return skipped("llm", "OPENAI_API_KEY is not set: the offline qualifier answers")
    base = (setup.settings.openai_base_url or OPENAI_BASE).rstrip("/")
    try:
        reply = http.get(f"{base}/models", headers=_bearer(key))
    except Unreachable as exc:
        return problem("llm", f"{exc}: the offline qualifier answers meanwhile")
    return judge_llm(reply, setup.settings.openai_model, setup.place("OPENAI_API_KEY"))


# --------------------------------------------------------------------------- voice messages


def judge_transcriber(reply: Reply, model: str, key_name: str, place: str) -> Check:
    name = "voice"
    unheard = "until then voice messages go to the owner and the client is asked to write"
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status == 200:
        ids = [m.get("id") for m in body.get("data") or [] if isinstance(m, dict)]
        if ids and model not in ids:
            listed = ", ".join(str(i) for i in ids[:6]) + (", …" if len(ids) > 6 else "")
            return warning(name, f"the endpoint answers, but does not list the transcription model {model} "
                                 f"(it has: {listed}): set TRANSCRIBE_MODEL to one it has, or TRANSCRIBE_BASE_URL "
                                 f"to an endpoint that transcribes; {unheard}")  # fmt: skip
        return ok(name, f"the endpoint answers; model {model} transcribes voice messages")
    error = body.get("error")
    code = (error.get("code") or error.get("type")) if isinstance(error, dict) else None
    if reply.status == 404:
        return warning(name, "the endpoint has no /models, so doctor cannot tell whether it transcribes")
    if reply.status in (401, 403):
        return problem(name, f"the endpoint refuses {key_name} ({reply.status} {code or ''}): make a new key and "
                             f"put it in {place}; {unheard}")  # fmt: skip
    if reply.status == 429 and code == "insufficient_quota":
        return problem(name, f"the account is out of credit (insufficient_quota): top it up; {unheard}")
    if reply.status == 429:
        return warning(name, "the endpoint is rate-limiting us (429)")
    return problem(name, f"the endpoint answered {reply.status} {code or ''}".rstrip())


def transcriber(http: Http, setup: Setup) -> Check:
    """The endpoint voice messages go to: TRANSCRIBE_* or, unset, the LLM's key and endpoint."""
    key_name = "TRANSCRIBE_API_KEY" if setup.secret("TRANSCRIBE_API_KEY") else "OPENAI_API_KEY"
    key = setup.secret(key_name)
    if not key:
        return skipped("voice", "neither TRANSCRIBE_API_KEY nor OPENAI_API_KEY is set: voice messages go to "
                                "the owner and the client is asked to write")  # fmt: skip
    cfg = setup.settings
    base = (cfg.transcribe_base_url or cfg.openai_base_url or OPENAI_BASE).rstrip("/")
    try:
        reply = http.get(f"{base}/models", headers=_bearer(key))
    except Unreachable as exc:
        return problem("voice", f"{exc}: voice messages go to the owner meanwhile")
    return judge_transcriber(reply, cfg.transcribe_model, key_name, setup.place(key_name))


# --------------------------------------------------------------------------- staff


def judge_staff(
    business: BusinessConfig, states: dict[str, StaffState], invite: Callable[[str], str]
) -> Check:
    """Active staff with no Telegram chat (never pressed Start on their invite, none in the config)."""
    name = "staff"
    active = [m for m in business.staff if m.active]
    if not active:
        return warning(name, "the config has no active staff: leads get no owner")
    silent = [
        m
        for m in active
        if not (states.get(m.id) and states[m.id].telegram_chat_id) and not m.telegram_chat_id
    ]
    if not silent:
        return ok(name, f"all {len(active)} active staff are connected to the bot")
    who = ", ".join(f"{m.id} ({m.name}, {m.role})" for m in silent)
    invites = "; ".join(invite(m.id) for m in silent) if len(silent) <= 3 else f"{invite('ID')} for each"
    return problem(name, f"{len(silent)} of {len(active)} never connected to the bot: {who} — the leads they get "
                         f"are seen by nobody; send each their invite: {invites}")  # fmt: skip


def staff(setup: Setup, bot_username: str | None) -> Check:
    if setup.business is None or setup.staff_state is None:
        return skipped("staff", "no stack reached: run `leadflow up`, or pass --stack NAME")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        business = setup.business()
        states = setup.staff_state([m.id for m in business.staff if m.active])
    except LookupError as exc:
        return problem("staff", f"{exc}")
    except (ClientError, BotoCoreError) as exc:
        return problem("staff", f"cannot read the staff table ({type(exc).__name__})")
    bot = f" --bot {bot_username}" if bot_username else " --bot <bot username>"
    return judge_staff(business, states, lambda staff_id: setup.command(f"staff invite {staff_id}{bot}"))


# --------------------------------------------------------------------------- all of it


def run_checks(setup: Setup, http: Http | None = None) -> list[Check]:
    http = http or Http()
    read: list[str] = []
    read_secret = setup.secret

    def secret(name: str) -> str | None:
        value = read_secret(name)
        if value:
            read.append(value)
        return value

    setup = replace(setup, secret=secret)
    cfg = setup.settings
    checks: list[Check] = []
    bot: dict | None = None

    token = secret("TELEGRAM_BOT_TOKEN")
    if token:
        check, bot = telegram_bot(http, cfg.telegram_api_base, token, setup.place("TELEGRAM_BOT_TOKEN"))
        checks.append(check)
        checks.append(telegram_webhook(http, cfg.telegram_api_base, token, setup) if bot
                      else skipped("telegram webhook", "the bot check failed"))  # fmt: skip
    else:
        checks.append(
            skipped("telegram", "TELEGRAM_BOT_TOKEN is not set: staff cards and replies go to the outbox")
        )

    meta_channels = []
    whatsapp = secret("WHATSAPP_TOKEN")
    if whatsapp:
        check, alive = meta_token(
            http, cfg.meta_graph_base, whatsapp, "whatsapp", setup.place("WHATSAPP_TOKEN")
        )
        checks.append(check)
        if not alive:
            checks.append(skipped("whatsapp number", "the token check failed"))
        elif cfg.whatsapp_phone_number_id:
            checks.append(whatsapp_number(http, cfg.meta_graph_base, whatsapp, cfg.whatsapp_phone_number_id,
                                          setup.place("WHATSAPP_PHONE_NUMBER_ID")))  # fmt: skip
        else:
            checks.append(problem("whatsapp number", "WHATSAPP_PHONE_NUMBER_ID is not set, so no WhatsApp reply is sent: "
                                                     f"copy «Phone number ID» from WhatsApp → API Setup into "
                                                     f"{setup.place('WHATSAPP_PHONE_NUMBER_ID')}"))  # fmt: skip
        if alive:
            meta_channels.append(("whatsapp", whatsapp))
    else:
        checks.append(skipped("whatsapp", "WHATSAPP_TOKEN is not set: WhatsApp replies go to the outbox"))
    instagram = secret("INSTAGRAM_TOKEN")
    if instagram:
        check, alive = meta_token(
            http, cfg.meta_graph_base, instagram, "instagram", setup.place("INSTAGRAM_TOKEN")
        )
        checks.append(check)
        if alive:
            meta_channels.append(("instagram", instagram))
    else:
        checks.append(skipped("instagram", "INSTAGRAM_TOKEN is not set: Instagram replies go to the outbox"))
    # One app serves both channels as a rule; each channel's webhook is read with its own token's app.
    for channel, channel_token in meta_channels:
        checks.extend(meta_webhooks(http, cfg.meta_graph_base, channel_token, [channel], setup))

    vk_token = secret("VK_TOKEN")
    checks.append(vk_callback(http, setup, vk_token) if vk_token
                  else skipped("vk", "VK_TOKEN is not set: VK replies go to the outbox"))  # fmt: skip

    bitrix_url = secret("BITRIX24_WEBHOOK_URL")
    if bitrix_url:
        checks.extend(bitrix24(http, bitrix_url, _crm_mode(setup), setup.place("BITRIX24_WEBHOOK_URL")))
    else:
        checks.append(
            skipped("bitrix24", "BITRIX24_WEBHOOK_URL is not set: the built-in CRM keeps the leads")
        )

    checks.extend(_other_crms(http, setup))

    secret("SMS_LOGIN")
    checks.append(sms(http, setup))
    checks.append(llm(http, setup))
    checks.append(transcriber(http, setup))
    checks.append(staff(setup, bot.get("username") if bot else None))
    return [replace(c, text=redact(c.text, read)) for c in checks]


def _other_crms(http: Http, setup: Setup) -> list[Check]:
    """amoCRM and the Google sheet(s) the config names (crm.kind, crm.mirror_sheet)."""
    try:
        crm = setup.business().crm if setup.business is not None else None
    except Exception:  # a missing or broken config: the staff check says so
        crm = None
    if crm is None:
        return []
    checks = []
    if crm.kind == "amocrm":
        base_url, token = setup.settings.amocrm_base_url, setup.secret("AMOCRM_TOKEN")
        if not base_url or not token:
            checks.append(problem("amocrm", "crm.kind is amocrm, but AMOCRM_BASE_URL or AMOCRM_TOKEN is not set: "
                                            f"set {setup.place('AMOCRM_BASE_URL')} and {setup.place('AMOCRM_TOKEN')}"))  # fmt: skip
        else:
            checks.append(amocrm(http, base_url, token, setup.place("AMOCRM_TOKEN")))
    for sheet in (crm.sheet if crm.kind == "sheets" else None, crm.mirror_sheet):
        if sheet is None:
            continue
        key = setup.secret("GOOGLE_SERVICE_ACCOUNT_JSON")
        if not key:
            checks.append(problem("google sheet", "a sheet is configured, but GOOGLE_SERVICE_ACCOUNT_JSON is not "
                                                  f"set: {setup.place('GOOGLE_SERVICE_ACCOUNT_JSON')}"))  # fmt: skip
            continue
        cfg = setup.settings
        checks.append(google_sheet(http, key, cfg.google_oauth_token_url, cfg.google_sheets_api_base,
                                   sheet.spreadsheet_id, sheet.sheet, setup.place("GOOGLE_SERVICE_ACCOUNT_JSON")))  # fmt: skip
    return checks


def _crm_mode(setup: Setup) -> str:
    if setup.business is None:
        return "auto"
    try:
        return setup.business().crm.mode
    except Exception:  # a missing or broken config: the staff check says so
        return "auto"


def summary(checks: list[Check]) -> str:
    parts = []
    for status in ("problem", "warning", "ok", "skipped"):
        n = sum(c.status == status for c in checks)
        if n:
            parts.append(f"{n} {status}{'s' if n > 1 and status in ('problem', 'warning') else ''}")
    return ", ".join(parts)
