"""Benchmarks that print figures (not part of the test run); run each as a module from the repo root."""
