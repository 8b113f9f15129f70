"""Journeys: whole conversations with the desk through a real ``ticketd serve`` (issue 18)."""
