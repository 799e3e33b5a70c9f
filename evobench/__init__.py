"""evobench: benchmark suite and evaluation harness for evolutionary model merging."""

__version__ = "0.1.0"
