"""Benchmark entry points run by `exchange bench`; each prints one JSON line."""
