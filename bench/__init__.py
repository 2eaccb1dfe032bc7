"""hedgebot benchmarks: ``python -m bench`` runs every ``bench/bench_*.py`` module.

Speed lives here, not in the test suite: tests assert behaviour, benchmarks report numbers with
ratios against named baselines (anchors measured once on a 2-core machine like the ones here,
or a baseline measured in the same run).
"""
