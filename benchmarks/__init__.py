"""Benchmarks: `python -m benchmarks.<name>`; results in docs/benchmarks/."""
