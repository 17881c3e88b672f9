"""Tiny random unified models built from configs in code, for tests, benchmarks and docs (no download needed)."""
