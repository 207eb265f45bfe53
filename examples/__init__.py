"""Examples of using Rhythm as a library (not shipped in the wheel)."""
