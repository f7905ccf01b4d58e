"""Frozen dataclasses for the nouns kpctl talks about. No I/O here."""
