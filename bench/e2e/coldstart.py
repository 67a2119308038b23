"""Cold start: import time of each function's handler in a fresh interpreter, against `import boto3`.

Each sample is a new `python -c` that loads functions/<name>/app.py by path (as Lambda's
bootstrap would import it) and prints how long the import took; median of --runs samples.

    .venv/bin/python bench/e2e/coldstart.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("ingest", "score", "route", "escalate", "remind")
COMMAND = "python bench/e2e/coldstart.py"

_SNIPPET = """
import importlib.util, time
t = time.perf_counter()
{body}
print(time.perf_counter() - t)
"""
_LOAD = """spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)"""


def sample(body: str) -> float:
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-central-1", "POWERTOOLS_METRICS_NAMESPACE": "leadflow",
           "POWERTOOLS_SERVICE_NAME": "leadflow", "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", _SNIPPET.format(body=body)], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True, timeout=60)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def measure(runs: int) -> dict[str, float]:
    bodies = {"boto3 (baseline)": "import boto3"}
    bodies.update({name: _LOAD.format(path=str(ROOT / "functions" / name / "app.py")) for name in FUNCTIONS})
    return {
        name: round(statistics.median(sample(body) for _ in range(runs)) * 1000, 1)
        for name, body in bodies.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.runs)
    for name, ms in result.items():
        print(
            f"coldstart: import {name:<16} median {ms:7.1f} ms of {args.runs}   [{COMMAND} --runs {args.runs}]"
        )
    if args.json:
        args.json.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
