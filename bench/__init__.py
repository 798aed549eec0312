"""Benchmarks of the capacity service against the bare stack, measured in the same run.

`python -m bench` (or `make bench`) runs them all; see bench/README.md for what each
figure means and how to read the ratios.
"""
