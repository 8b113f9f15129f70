"""``ticketd serve``: the wiring, the background loops, and what operators see."""
