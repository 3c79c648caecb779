"""Footnote benchmarks: `python -m benchmarks [--quick]` prints tables and writes var/bench/latest.json."""
