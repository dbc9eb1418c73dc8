"""Benchmarks on the local stack: figures with ratios against baselines measured in the same run."""
