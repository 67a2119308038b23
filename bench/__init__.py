"""Benchmarks that print figures (not part of the test run); run each as a module from the repo root."""

from pathlib import Path

# The business every bench runs: pinned, so a figure compares with the last one when the bundled
# example business changes (it gained a second branch, whose question would change the workload).
BENCH_CONFIG = Path(__file__).with_name("salon.yaml")
