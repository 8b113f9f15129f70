"""Every mail ticketd writes: ordered, composed, scanned for PII, queued, delivered."""
