"""Benchmarks of whitened-search: quality tables now; speed and peers later (see bench/README.md).

Run one with `python -m bench <name> [--smoke] [--out DIR]` from the repository root. Each writes
Markdown tables and PNG plots into bench/results/ (or --out), through the library's own code paths.
"""
