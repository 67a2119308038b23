"""End-to-end benchmarks on the local stack: `python -m bench.e2e.run`, `python bench/e2e/coldstart.py`."""
