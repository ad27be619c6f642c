"""Benchmarks of inventory-engine: each module runs with ``python -m benchmarks.<name>``."""
