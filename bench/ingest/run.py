"""Ingest figures: cold import of the handler vs boto3, AWS requests per accepted webhook,
handler time per webhook against the local emulator (moto server on loopback).

    .venv/bin/python bench/ingest/run.py [--webhooks 600] [--imports 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMAND = ".venv/bin/python bench/ingest/run.py"
LOAD_INGEST = (
    "import importlib.util as u; s = u.spec_from_file_location('ingest_app', 'functions/ingest/app.py'); "
    "m = u.module_from_spec(s); s.loader.exec_module(m)"
)
SECRETS = {
    "TELEGRAM_WEBHOOK_SECRET": "bench-tg", "META_APP_SECRET": "bench-meta", "META_VERIFY_TOKEN": "bench-verify",
    "VK_SECRET": "bench-vk", "VK_CONFIRMATION_CODE": "bench-vk-code", "FORM_SECRET": "bench-form",
    "CALL_SECRET": "bench-call", "SMS_API_KEY": "bench-sms", "BITRIX24_APP_TOKEN": "bench-b24",
    "SMS_WEBHOOK_SECRET": "bench-sms-hook",
}  # fmt: skip


def _fresh_interpreter_s(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def cold_imports(runs: int) -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-central-1", "PYTHONDONTWRITEBYTECODE": "0"}
    codes = {"pass": "pass", "import boto3": "import boto3", "ingest": LOAD_INGEST,
             "ingest + boto3": LOAD_INGEST + "; import boto3"}  # fmt: skip
    for code in codes.values():  # warm the bytecode and file caches once
        _fresh_interpreter_s(code, env)
    timings: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(runs):  # interleaved, so drift in machine load hits all alike
        for name, code in codes.items():
            timings[name].append(_fresh_interpreter_s(code, env))
    med = {k: statistics.median(v) * 1000 for k, v in timings.items()}
    print(f"cold import, median of {runs} fresh interpreters (wall ms, interpreter start included):")
    print(f"  python -c pass            {med['pass']:7.0f} ms")
    print(f"  python -c 'import boto3'  {med['import boto3']:7.0f} ms")
    print(f"  ingest handler module     {med['ingest']:7.0f} ms")
    print(
        f"  ingest + boto3            {med['ingest + boto3']:7.0f} ms  (boto3 is imported by the first webhook)"
    )
    for name in ("ingest", "ingest + boto3"):
        ratio = med[name] / med["import boto3"]
        net = (med[name] - med["pass"]) / (med["import boto3"] - med["pass"])
        print(f"  {name} / boto3 = {ratio:.2f}x; net of interpreter start {net:.2f}x")
    print("  (target: ingest / boto3 <= 1.4x)")
    top_imports(env)


def top_imports(env: dict[str, str], n: int = 8) -> None:
    """Where the ingest import time goes: -X importtime self time, summed per top-level package."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", LOAD_INGEST], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stderr  # fmt: skip
    by_package: Counter[str] = Counter()
    for line in err.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if m:
            name = m.group(2).split(".")[0]
            by_package["stdlib" if name in sys.stdlib_module_names else name] += int(m.group(1))
    print(f"  -X importtime, self time of the ingest module's imports per package (top {n}):")
    for name, us in by_package.most_common(n):
        print(f"    {name:28s} {us / 1000:7.1f} ms")


def emulator_run(webhooks: int) -> None:
    os.environ.update(SECRETS)
    os.environ["SMS_PROVIDER"] = "smsc"  # the SMS webhook reads the callbacks of SMS_PROVIDER alone
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    import boto3

    from leadflow import wiring
    from leadflow.settings import reset_caches
    from leadflow_local import functions
    from leadflow_local.stack import Emulator, api_gateway_event, function_env, quiet_local_runtime
    from leadflow_local.template import load_template
    from leadflow_local.webhooks import Webhooks

    quiet_local_runtime()
    template = load_template()
    emulator = Emulator(template)
    emulator.start()
    try:
        env = function_env(
            emulator, template, "ingest", {"Stage": "local", "SecretsPrefix": "", "AlarmEmail": ""}
        )
        os.environ.update(env)
        reset_caches()
        calls: Counter[str] = Counter()

        def count_call(event_name: str, **_: object) -> None:
            calls[event_name.split(".", 1)[1]] += 1

        session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call", count_call)
        wiring.reset()
        functions.load_function("ingest")
        hooks = Webhooks("http://unused", SECRETS)
        now = datetime.now(UTC)
        makers = [
            lambda i: hooks.telegram_text(10_000 + i, "Анна", "Хочу на маникюр завтра", now),
            lambda i: hooks.whatsapp_text(f"7916{i:07d}", "Анна", "Хочу на маникюр завтра", now),
            lambda i: hooks.instagram_text(str(170_000 + i), "Сколько стоит стрижка?", now),
            lambda i: hooks.vk_message(20_000 + i, "Можно записаться на субботу?", now),
            lambda i: hooks.tilda_form({"Name": "Анна", "Phone": f"+7916{i:07d}", "tranid": f"b:{i}"}),
            lambda i: hooks.missed_call(f"+7916{i:07d}", "+74951234567", now),
            lambda i: hooks.smsc_inbound(f"+7916{i:07d}", "Да", now),
        ]
        events = []
        for i in range(webhooks):
            d = makers[i % len(makers)](i)
            events.append(
                api_gateway_event("POST", f"/webhooks/{d.channel}", d.query, d.headers, d.body, "127.0.0.1")
            )
        times, statuses = [], Counter()
        # The handler's metrics (EMF lines on stdout, as in Lambda) are made, and thrown away here.
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            functions.invoke("ingest", events[0], env)  # warm: the first call builds the clients
            calls.clear()
            for event in events[1:]:
                started = time.perf_counter()
                answer = functions.invoke("ingest", event, env)
                times.append(time.perf_counter() - started)
                statuses[answer["statusCode"]] += 1
        accepted = statuses[200]
        times_ms = sorted(t * 1000 for t in times)
        p = lambda q: times_ms[min(len(times_ms) - 1, int(q * len(times_ms)))]  # noqa: E731
        print(f"ingest handler against the local emulator ({emulator.endpoint}), {len(times)} webhooks, "
              f"7 channels round-robin, statuses {dict(statuses)}:")  # fmt: skip
        print(f"  p50 {p(0.50):.1f} ms   p99 {p(0.99):.1f} ms   max {times_ms[-1]:.1f} ms")
        print(f"  AWS requests per accepted webhook ({accepted} accepted):")
        for op, n in sorted(calls.items()):
            print(f"    {op:22s} {n / accepted:.2f}")
        print(f"    {'total':22s} {sum(calls.values()) / accepted:.2f} (target <= 2)")
    finally:
        emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--webhooks", type=int, default=600)
    parser.add_argument("--imports", type=int, default=7)
    args = parser.parse_args()
    print(f"$ {COMMAND} --webhooks {args.webhooks} --imports {args.imports}")
    cold_imports(args.imports)
    emulator_run(args.webhooks)


if __name__ == "__main__":
    main()
