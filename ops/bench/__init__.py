"""Benchmarks of the running system (``safety bench e2e``)."""
