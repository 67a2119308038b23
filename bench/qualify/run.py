"""Accuracy, throughput and import cost of the offline qualifier on the labelled sets.

    python bench/qualify/run.py [--data FILE ...] [--catalog FILE] [--verbose] [--no-speed]

Without --data it runs the shared sample, dev.jsonl, heldout.jsonl and the two phrase-family sets
(phrases_dev.jsonl, phrases_heldout.jsonl). A field is scored in a file when its cases label it
(the second-edition fields `services` and `preferred_window` are in the phrase sets only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHARED = ROOT.parent / "shared" / "samples" / "qualify"
COPY = ROOT / "tests" / "unit" / "domain" / "qualify" / "data"  # the same files, kept with the tests
SAMPLE = SHARED / "sample.jsonl" if (SHARED / "sample.jsonl").exists() else COPY / "sample.jsonl"
DEFAULT_CATALOG = SHARED / "catalog.yaml" if (SHARED / "catalog.yaml").exists() else COPY / "catalog.yaml"
FIELDS = (
    "intent",
    "temperature",
    "service",
    "services",
    "preferred_date",
    "preferred_time",
    "preferred_window",
    "phone",
    "name",
)
TARGETS = {
    "intent": 0.90,
    "service": 0.90,
    "services": 0.90,
    "preferred_date": 0.90,
    "preferred_time": 0.90,
    "preferred_window": 0.90,
    "phone": 0.98,
    "name": 0.85,
}
DATA_FILES = ("dev.jsonl", "heldout.jsonl", "phrases_dev.jsonl", "phrases_heldout.jsonl")
SPEED_TARGET = 2000
THROUGHPUT_SECONDS = 3.0


def load_cases(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def predict(case: dict, services, tz) -> dict:
    from leadflow.domain.qualify.offline import qualify_offline

    result = qualify_offline(
        case["text"],
        datetime.fromisoformat(case["received_at"]),
        services,
        tz=tz,
        channel=case.get("channel", ""),
    )
    return result.model_dump(mode="json")


def score_file(path: Path, services, tz, verbose: bool) -> dict[str, float]:
    cases = load_cases(path)
    fields = [name for name in FIELDS if all(name in case["expect"] for case in cases)]
    hits = dict.fromkeys(fields, 0)
    misses: list[str] = []
    for case in cases:
        got = predict(case, services, tz)
        for name in fields:
            if got[name] == case["expect"][name]:
                hits[name] += 1
            else:
                misses.append(
                    f"  {case['id']:>6} {name:<16} want {case['expect'][name]!s:<14} got {got[name]!s:<14}"
                    f" | {case['text'][:90]!r}"
                )
    accuracy = {name: hits[name] / len(cases) for name in fields}
    cells = "  ".join(f"{name.replace('preferred_', '')} {accuracy[name]:6.1%}" for name in fields)
    print(f"{path.name:<21} n={len(cases):<4} {cells}")
    if verbose and misses:
        print("\n".join(misses))
    return accuracy


def throughput(paths: list[Path], services, tz, seconds: float = 3.0, cold_words: bool = False) -> float:
    """Messages per second after warm-up; cold_words empties the per-word caches before every pass,
    so each pass pays for morphology like a stream of unseen messages would."""
    from leadflow.domain.qualify import morphology, names, text
    from leadflow.domain.qualify.services import Catalog

    cases = [case for path in paths for case in load_cases(path)]
    for case in cases:  # warm-up: dictionaries loaded, catalog index built, as in a warm Lambda
        predict(case, services, tz)
    done = 0
    elapsed = 0.0
    while elapsed < seconds:
        if cold_words:
            morphology.lemmas_of.cache_clear()
            morphology.is_known_word.cache_clear()
            text.english_lemmas.cache_clear()
            names.name_parse.cache_clear()
            names._name_or_surname.cache_clear()
            Catalog.of(services)._fuzzy.cache_clear()
        start = time.perf_counter()
        for case in cases:
            predict(case, services, tz)
        elapsed += time.perf_counter() - start
        done += len(cases)
    return done / elapsed


def cold_first_message(catalog: Path) -> float:
    code = (
        "import time;t=time.perf_counter();from datetime import datetime;from leadflow.business import "
        f"load_business_config as l;c=l({str(catalog)!r});"
        "from leadflow.domain.qualify.offline import qualify_offline;"
        "qualify_offline('хочу на стрижку завтра в 15:00 89131234567',datetime.fromisoformat("
        "'2026-03-12T10:00:00+07:00'),c.services,tz=c.tz);print(time.perf_counter()-t)"
    )
    env = _bytecode_env()
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip())


def _bytecode_env() -> dict[str, str]:
    """Fresh interpreters may cache bytecode (a deployed Lambda has .pyc files), kept out of the tree."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "leadflow-bench-pycache")
    return env


def import_time(module: str, runs: int = 5) -> float:
    """Median wall time of `import module` in a fresh interpreter (seconds), after a run that writes .pyc."""
    code = f"import time;t=time.perf_counter();import {module};print(time.perf_counter()-t)"
    env = _bytecode_env()
    samples = []
    for _ in range(runs + 1):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        samples.append(float(out.stdout.strip()))
    return statistics.median(samples[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", nargs="*", type=Path, help="JSONL files (default: sample, dev, heldout and the phrase sets)"
    )
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument("--verbose", "-v", action="store_true", help="list every miss")
    parser.add_argument("--no-speed", action="store_true", help="skip throughput and import timing")
    args = parser.parse_args(argv)

    from leadflow.business import load_business_config

    config = load_business_config(args.catalog)
    paths = args.data or [p for p in (SAMPLE, *(HERE / "data" / name for name in DATA_FILES)) if p.exists()]
    results = {path.name: score_file(path, config.services, config.tz, args.verbose) for path in paths}
    for name, accuracy in results.items():
        if "heldout" in name:
            failed = [f for f, target in TARGETS.items() if f in accuracy and accuracy[f] < target]
            print(f"targets on {name}: " + ("all met" if not failed else "missed: " + ", ".join(failed)))
    if not args.no_speed:
        rate = throughput(paths, config.services, config.tz, THROUGHPUT_SECONDS)
        cold_rate = throughput(paths, config.services, config.tz, THROUGHPUT_SECONDS, cold_words=True)
        print(
            f"throughput: {rate:,.0f} msg/s on one core with warm word caches (target {SPEED_TARGET:,}), "
            f"{cold_rate:,.0f} msg/s with word caches emptied before each pass ({sum(len(load_cases(p)) for p in paths)} "
            f"messages a pass, mean over {THROUGHPUT_SECONDS:.0f} s)"
        )
        offline_ms = import_time("leadflow.domain.qualify.offline") * 1000
        models_ms = import_time("leadflow.domain.models") * 1000
        boto3_ms = import_time("boto3") * 1000
        print(
            f"cold import: leadflow.domain.qualify.offline {offline_ms:.0f} ms (leadflow.domain.models+pydantic alone: "
            f"{models_ms:.0f} ms), boto3 {boto3_ms:.0f} ms (median of 5 fresh interpreters, .pyc cached)"
        )
        print(
            f"cold first message (import + config + morphology + phonenumbers): "
            f"{cold_first_message(args.catalog) * 1000:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
