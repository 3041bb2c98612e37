"""The GEPA algorithm: pure Python, no IO, no clock, no threads."""
