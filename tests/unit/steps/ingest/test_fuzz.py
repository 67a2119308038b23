"""Whatever a client sends — bodies, headers, query — ingest answers below 500.

Two kinds of input: arbitrary bytes with arbitrary headers and query (the auth layer), and the
samples of events/** mutated at random places and signed again, so the parsers behind the
signature checks get the odd shapes too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from leadflow.adapters.channels.call import mango_sign
from leadflow.adapters.channels.meta import sign_meta_body
from tests.support.webhooks import CHANNEL_SECRET, SECRETS, changed, delivery, ingest, post, sample_files

CHANNELS = sorted(CHANNEL_SECRET)
SAMPLES = [p for p in sample_files() if p.parent.name != "ingest"]
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HEADER_NAMES = st.sampled_from(
    ["x-telegram-bot-api-secret-token", "x-hub-signature-256", "x-form-secret", "x-call-secret", "signature",
     "content-type", "x-forwarded-for"]
) | st.text(min_size=1, max_size=20)  # fmt: skip
HEADER_VALUES = st.sampled_from([*SECRETS.values(), "sha256=" + "0" * 64, "application/json"]) | st.text(
    max_size=80
)
QUERY_KEYS = st.sampled_from(
    ["provider", "secret", "hub.mode", "hub.verify_token", "hub.challenge", "zd_echo"]
) | st.text(min_size=1, max_size=12)
QUERY_VALUES = st.sampled_from(
    ["smsru", "smsc", "aws", "zadarma", "mango", "mango/events/summary", "subscribe", *SECRETS.values()]
) | st.text(max_size=40)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
) | st.integers(min_value=-(10**30), max_value=10**30)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found += _paths(inner, (*prefix, i))
    return found


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    return [_replace(v, rest, new) if i == head else v for i, v in enumerate(value)]


@st.composite
def mutated_json(draw: st.DrawFn, document: Any) -> Any:
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)))
        document = _replace(document, path, draw(JSON))
    return document


@st.composite
def mutated_sample(draw: st.DrawFn) -> tuple[Path, dict]:
    """A sample and its delivery with a few values replaced, its signature made valid again where we can."""
    path = draw(st.sampled_from(SAMPLES))
    return path, _mutated(draw, delivery(path))


def _mutated(draw: st.DrawFn, event: dict) -> dict:
    channel = event["rawPath"].rsplit("/", 1)[-1]
    body = event.get("body") or ""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict | list):
        new = json.dumps(draw(mutated_json(document)), ensure_ascii=draw(st.booleans())).encode()
        if channel == "vk" and isinstance(json.loads(new), dict):
            new = json.dumps({**json.loads(new), "secret": SECRETS["VK_SECRET"]}).encode()
        out = changed(event, body=new)
        if channel in ("whatsapp", "instagram"):
            out["headers"]["x-hub-signature-256"] = sign_meta_body(new, SECRETS["META_APP_SECRET"])
        return out
    fields = parse_qsl(body, keep_blank_values=True)
    if not fields:
        return event
    i = draw(st.integers(0, len(fields) - 1))
    fields[i] = (fields[i][0], draw(st.text(max_size=60) | JSON.map(json.dumps)))
    form = dict(fields)
    if {"vpbx_api_key", "json"} <= form.keys():  # Mango: sign the new json as Mango would
        form["sign"] = mango_sign(form["vpbx_api_key"], form["json"], SECRETS["CALL_SECRET"])
    return changed(event, body=urlencode(form).encode())


@FUZZ
@given(
    channel=st.sampled_from(CHANNELS),
    method=st.sampled_from(["POST", "GET"]),
    body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    headers=st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=5),
    query=st.dictionaries(QUERY_KEYS, QUERY_VALUES, max_size=4),
)
def test_arbitrary_requests_never_get_a_5xx(env, logs, channel, method, body, headers, query):
    request = post(channel, body, headers, urlencode(query))
    request["requestContext"]["http"]["method"] = request["routeKey"] = method
    answer = ingest(request)
    event(f"status {answer['status']}")
    assert 200 <= answer["status"] < 500


@FUZZ
@given(sample=mutated_sample())
def test_mutated_signed_samples_never_get_a_5xx(env, logs, configure_for, sample):
    path, delivered = sample
    configure_for(path)  # an SMS sample is read as its own provider's (SNS: signature checked)
    answer = ingest(delivered)
    event(f"status {answer['status']}")
    assert 200 <= answer["status"] < 500
    logs.watch("+79161234567", "79161234567")  # the client number most samples carry
    env.receive("ScoreQueue"), env.receive("RouteQueue")
