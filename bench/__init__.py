"""Benchmarks of whitened-search: quality, speed and cost of the library, the service and peers.

Run one with `python -m bench <name> [--smoke] [--out DIR]` from the repository root (the list:
`python -m bench --help`). Each writes JSON figures, Markdown tables and PNG plots into
bench/results/ (or --out); `python -m bench render` rewrites the READMEs' tables from them.
See bench/README.md.
"""
