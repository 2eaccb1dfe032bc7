"""hedgebot benchmarks: ``python -m bench`` runs every ``bench/bench_*.py`` module.

Speed lives here, not in the test suite: tests assert behaviour, benchmarks report numbers with
ratios against named baselines (REFERENCE.md §5 or a baseline measured in the same run).
"""
