"""Rhythm: a fast, self-hosted issue tracker in one Python process."""

__version__ = "0.1.0"
