"""Benchmarks that load a plain-aiohttp baseline and Rhythm side by side.

Run ``python -m bench run [case ...]``; see bench/README.md.
"""
