"""`make bench`: every benchmark, one table. Each figure comes with the command that produced it.

Runs the end-to-end benchmark (latency, throughput, AWS requests per lead, cost per 1,000
leads), the cold-start benchmark, and the other benches when they exist (each as a subprocess;
a missing or failing one is a clear "not run" row, never a crash of the whole table).

    .venv/bin/python bench/run_all.py [--quick] [--leads N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
# (name, script, arguments, slow): slow ones are skipped by --quick.
OTHER_BENCHES = [
    ("qualify", "bench/qualify/run.py", [], False),
    ("route: Bitrix24 push", "bench/route/bitrix_push.py", [], True),
    ("route: Bitrix24, containers at once", "bench/route/bitrix_concurrent.py", [], True),
    ("route: amoCRM and Google Sheets", "bench/route/crm_requests.py", [], False),
    ("schedule", "bench/schedule/run.py", [], False),
    ("ingest", "bench/ingest/run.py", [], False),
    ("booking", "bench/booking/run.py", [], False),
    ("panel", "bench/panel/run.py", [], True),
]
KEY_LINES = 6


def run(args: list[str], timeout: float) -> tuple[int | None, str, float]:
    started = time.monotonic()
    try:
        done = subprocess.run(
            [PY, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
        return done.returncode, done.stdout, time.monotonic() - started
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, out, time.monotonic() - started


def key_lines(stdout: str) -> list[str]:
    """What a bench printed last: its figures (the benches print them at the end)."""
    lines = [line.rstrip() for line in stdout.splitlines() if line.strip() and any(c.isdigit() for c in line)]
    return lines[-KEY_LINES:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="e2e with 200 leads; skip the slowest benches")
    parser.add_argument("--leads", type=int, help="leads for the e2e run (default 2000, 200 with --quick)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per bench")
    args = parser.parse_args()
    leads = args.leads or (200 if args.quick else 2000)
    rows: list[tuple[str, str, str]] = []  # (bench, figure, command)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "e2e.json"
        e2e_cmd = ["-m", "bench.e2e.run", "--leads", str(leads), "--json", str(out)]
        code, stdout, took = run(e2e_cmd, args.timeout)
        if out.exists():
            rows.extend(e2e_rows(json.loads(out.read_text()), f"python -m bench.e2e.run --leads {leads}"))
            if code:
                rows.append(("e2e", f"FAILED checks (exit {code}): see missing/refused counts", ""))
        else:
            rows.append(
                ("e2e", f"not run: exit {code} after {took:.0f} s", "python " + " ".join(e2e_cmd[:3]))
            )
        cold = Path(tmp) / "cold.json"
        code, _, took = run(["bench/e2e/coldstart.py", "--runs", "5", "--json", str(cold)], 300)
        if cold.exists():
            figures = json.loads(cold.read_text())
            for name, ms in figures.items():
                rows.append(
                    (
                        "cold start",
                        f"import {name}: {ms:.0f} ms (median of 5)",
                        "python bench/e2e/coldstart.py --runs 5",
                    )
                )
        else:
            rows.append(("cold start", f"not run: exit {code}", "python bench/e2e/coldstart.py"))

    for name, script, extra, slow in OTHER_BENCHES:
        command = " ".join(["python", script, *extra])
        if not (ROOT / script).exists():
            rows.append((name, "not run: script not present", command))
            continue
        if slow and args.quick:
            rows.append((name, "not run: skipped by --quick", command))
            continue
        code, stdout, took = run([script, *extra], args.timeout)
        lines = key_lines(stdout)
        if code != 0 or not lines:
            why = "timed out" if code is None else f"exit {code}"
            rows.append((name, f"not run: {why} after {took:.0f} s", command))
        rows.extend((name, line, command) for line in lines)
    print_table(rows)
    return 0


def e2e_rows(data: dict, command: str) -> list[tuple[str, str, str]]:
    e, c = data["e2e"], data["cost"]
    p, lat = e["per_lead"], e["latency_ms"]
    rows = [
        ("e2e", f"{e['leads']} leads: stored {e['stored_leads']}, missing {e['missing_lead']}, "
                f"no reply {e['missing_reply']}, refused {e['refused']}", command),
        ("e2e", f"webhook→first reply p50 {lat['50']} ms, p95 {lat['95']} ms, p99 {lat['99']} ms", command),
        ("e2e", f"{e['leads_per_s']} leads/s through ingest→score→route (offered {e['offered_per_s']}/s)", command),
        ("e2e", f"per lead: API GW {p['api_gateway']:.2f}, Lambda {p['lambda_invocations']:.2f}, "
                f"SQS {p['sqs_requests']:.2f}, DynamoDB {p['dynamodb_requests']:.1f} req "
                f"({p['dynamodb_rru']:.1f} RRU, {p['dynamodb_wru']:.1f} WRU, estimated)", command),
        ("e2e", f"schedule fires: escalate {e['schedule_fires']['escalate']}, remind {e['schedule_fires']['remind']}", command),
    ]  # fmt: skip
    for name, d in sorted(e["durations"].items()):
        rows.append(
            (
                "e2e",
                f"lambda {name}: {d['invocations']} calls, p50 {d['p50_ms']} ms, mean {d['mean_ms']} ms",
                command,
            )
        )
    rows += [
        ("cost", f"variable AWS ${c['variable_per_1000']:.4f} per 1,000 leads "
                 f"({'meets' if c['target_met'] else 'MISSES'} $0.05)", command),
        ("cost", f"fixed ${c['fixed_total_per_month']:.2f}/month; total at 10k leads/month ${c['monthly_at_10k']:.2f}", command),
        ("cost", f"Zapier {c['zapier_tasks_per_lead']:.2f} tasks/lead ${c['zapier_per_1000']:.2f} per 1,000; "
                 f"Make {c['make_ops_per_lead']:.2f} ops/lead ${c['make_per_1000']:.2f} per 1,000", command),
        ("cost", f"LLM tokens per lead {c['llm_tokens_per_lead']:.0f} (offline engine)", command),
    ]  # fmt: skip
    return rows


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    fig = min(max(len(r[1]) for r in rows), 110)
    print(f"{'bench':<{width}} | {'figure':<{fig}} | command")
    print(f"{'-' * width}-+-{'-' * fig}-+-{'-' * 30}")
    for bench, figure, command in rows:
        print(f"{bench:<{width}} | {figure:<{fig}} | {command}")


if __name__ == "__main__":
    sys.exit(main())
