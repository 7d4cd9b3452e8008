"""The benchmark suite behind `make bench`: one run, every figure, written to docs/benchmarks/."""
