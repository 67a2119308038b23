"""Cost per 1,000 leads from the measured request counts and the price table (bench/prices.json).

Variable (per lead): API Gateway HTTP API requests, Lambda requests and arm64 GB-s at each
function's MemorySize from template.yaml, SQS requests (handlers + event source mapping),
DynamoDB on-demand RRU/WRU. Fixed (per month, whatever the volume): the escalate (every
minute) and remind (every 5 minutes) schedules with their Lambda time and due-index reads,
the event source mapping's empty long polls, CloudWatch alarms counted in template.yaml, SSM
parameters, log ingestion and storage. Compared with the same flow on Zapier and Make.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PRICES = ROOT / "bench" / "prices.json"
LEADS_PER_MONTH = 10_000
MONTH_S = 30 * 86_400
# A no-code flow doing what leadflow does per lead. Zapier bills successful actions (trigger,
# filters, paths and delays are free); Make bills every module run, the trigger included.
NO_CODE_STEPS = [
    ("trigger: webhook / messenger message", 0, 1),
    ("AI or formatter step: extract service, date, phone", 1, 1),
    ("search contact in CRM", 1, 1),
    ("create lead in CRM", 1, 1),
    ("instant reply to the client", 1, 1),
    ("look up owner (sheet / data store round-robin)", 1, 1),
    ("owner card to Telegram", 1, 1),
    ("SLA check after a delay: read CRM status", 1, 1),
    ("escalation message (about 1 lead in 3)", 0.33, 0.33),
]
# Logs per invocation: Lambda's START/END/REPORT lines plus our few JSON lines (estimate).
LOG_BYTES_PER_INVOCATION = 900
# Lambda's SQS event source mapping long-polls each queue with about 5 pollers, 20 s each,
# even when idle (AWS docs describe the pollers; the count is an estimate).
ESM_POLLERS, LONG_POLL_S, QUEUES_WITH_ESM = 5, 20, 2


def memory_sizes() -> dict[str, int]:
    from leadflow_local.template import load_template

    template = load_template()
    default = 512
    raw = (ROOT / "template.yaml").read_text(encoding="utf-8")
    if "MemorySize:" in raw.split("Resources:")[0]:
        default = int(raw.split("Resources:")[0].split("MemorySize:")[1].split()[0])
    return {
        spec.name: int(template.resources[spec.logical_id]["Properties"].get("MemorySize", default))
        for spec in template.functions().values()
    }


def alarm_count() -> int:
    from leadflow_local.template import load_template

    return len(load_template().of_type("AWS::CloudWatch::Alarm"))


def prices() -> dict[str, Any]:
    return {k: v for k, v in json.loads(PRICES.read_text(encoding="utf-8")).items() if not k.startswith("_")}


def cost_table(result: dict) -> dict[str, Any]:
    p = {k: v["usd"] for k, v in prices().items()}
    table = prices()
    memory = memory_sizes()
    n = result["leads"]
    per_lead = result["per_lead"]
    durations = result["durations"]

    def gb_s(name: str, invocations: float) -> float:
        d = durations.get(name)
        return invocations * (d["mean_ms"] / 1000 if d else 0) * memory.get(name, 512) / 1024

    per_1000: dict[str, float] = {}
    flow = ("ingest", "score", "route")
    per_1000["api_gateway"] = per_lead["api_gateway"] * 1000 * p["http_api_per_million"] / 1e6
    per_1000["lambda_requests"] = (
        per_lead["lambda_invocations"] * 1000 * p["lambda_request_per_million"] / 1e6
    )
    per_1000["lambda_gb_s"] = (
        sum(gb_s(f, durations.get(f, {}).get("invocations", 0) / n * 1000) for f in flow)
        * p["lambda_arm64_gb_s"]
    )
    per_1000["sqs"] = per_lead["sqs_requests"] * 1000 * p["sqs_standard_per_million"] / 1e6
    per_1000["dynamodb"] = (per_lead["dynamodb_rru"] * p["dynamodb_on_demand_rru_per_million"]
                            + per_lead["dynamodb_wru"] * p["dynamodb_on_demand_wru_per_million"]) * 1000 / 1e6  # fmt: skip
    variable = sum(per_1000.values())

    fixed: dict[str, float] = {}
    fires = {"escalate": MONTH_S / 60, "remind": MONTH_S / 300}
    for name, count in fires.items():
        fixed[f"{name}_schedule_lambda"] = (
            count * p["lambda_request_per_million"] / 1e6 + gb_s(name, count) * p["lambda_arm64_gb_s"]
        )
        ticks = max(result["schedule_fires"].get(name, 0), 1)
        calls = result["calls_by_function"].get(name, {}).get("dynamodb", 0) / ticks
        # An idle tick queries the due index: about 0.5 RRU per query (eventually consistent, < 4 KB).
        fixed[f"{name}_schedule_dynamodb"] = (
            count * calls * 0.5 * p["dynamodb_on_demand_rru_per_million"] / 1e6
        )
    empty_polls = ESM_POLLERS * QUEUES_WITH_ESM * MONTH_S / LONG_POLL_S
    fixed["sqs_idle_long_polls"] = empty_polls * p["sqs_standard_per_million"] / 1e6
    alarms = alarm_count()
    fixed["cloudwatch_alarms"] = (
        max(alarms - table["cloudwatch_alarm_standard_month"].get("free_alarms", 0), 0)
        * p["cloudwatch_alarm_standard_month"]
    )
    fixed["ssm_parameters_standard"] = 0.0
    invocations_month = per_lead["lambda_invocations"] * LEADS_PER_MONTH + sum(fires.values())
    log_gb = invocations_month * LOG_BYTES_PER_INVOCATION / 1e9
    fixed["logs_ingest_and_storage"] = log_gb * (
        p["cloudwatch_logs_ingest_per_gb"] + p["cloudwatch_logs_storage_gb_month"]
    )

    zapier_tasks = sum(step[1] for step in NO_CODE_STEPS)
    make_ops = sum(step[2] for step in NO_CODE_STEPS)
    zapier = table["zapier_professional_5000_tasks_month"]
    make = table["make_core_150000_ops_month"]
    return {
        "per_1000_leads": {k: round(v, 5) for k, v in per_1000.items()},
        "variable_per_1000": round(variable, 4),
        "target_met": variable <= 0.05,
        "fixed_per_month": {k: round(v, 4) for k, v in fixed.items()},
        "fixed_total_per_month": round(sum(fixed.values()), 3),
        "monthly_at_10k": round(variable * LEADS_PER_MONTH / 1000 + sum(fixed.values()), 3),
        "alarms_in_template": alarms,
        "log_gb_per_month": round(log_gb, 4),
        "zapier_tasks_per_lead": zapier_tasks,
        "zapier_per_1000": round(zapier_tasks * 1000 * zapier["usd"] / zapier["tasks"], 2),
        "make_ops_per_lead": make_ops,
        "make_per_1000": round(make_ops * 1000 * make["usd"] / make["operations"], 2),
        "llm_tokens_per_lead": result.get("llm_tokens_per_lead", 0),
        "memory_mb": memory,
    }


def print_cost(c: dict, command: str) -> None:
    parts = ", ".join(f"{k} ${v:.4f}" for k, v in c["per_1000_leads"].items())
    verdict = "meets" if c["target_met"] else "MISSES"
    print(f"cost: variable AWS ${c['variable_per_1000']:.4f} per 1,000 leads ({parts}); {verdict} the "
          f"$0.05 target, LLM excluded   [{command}]")  # fmt: skip
    fixed = ", ".join(f"{k} ${v:.3f}" for k, v in c["fixed_per_month"].items())
    print(f"cost: fixed ${c['fixed_total_per_month']:.2f}/month ({fixed}; {c['alarms_in_template']} alarms "
          f"in template.yaml, first 10 free; logs ≈{c['log_gb_per_month']} GB)   [{command}]")  # fmt: skip
    print(f"cost: at {LEADS_PER_MONTH:,} leads/month ≈ ${c['monthly_at_10k']:.2f}/month on AWS   [{command}]")
    print(f"cost: same flow on Zapier {c['zapier_tasks_per_lead']:.2f} tasks/lead ≈ ${c['zapier_per_1000']:.2f} "
          f"per 1,000 leads; on Make {c['make_ops_per_lead']:.2f} operations/lead ≈ ${c['make_per_1000']:.2f} "
          f"per 1,000 leads (prices: bench/PRICES.md)   [{command}]")  # fmt: skip
    print(f"cost: LLM tokens per lead {c['llm_tokens_per_lead']:.0f} (offline engine; priced separately)")
