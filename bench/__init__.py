"""Benchmarks: one script per benchmark, each printing ratios against its baseline measured in the same run."""
