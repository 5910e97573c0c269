"""Benchmarks of the edge runtime (`python bench/rpc.py`); see bench/README.md."""
