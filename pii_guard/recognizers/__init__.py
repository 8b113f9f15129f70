"""Presidio recognizers for this domain: compiled patterns, validators and context."""
