"""Benchmark scripts (``python -m benchmarks.<name>``): they print medians, ratios and figures; no assertions."""
