"""Incidents and the people on them: numbers, records, states, classification, the roster."""
