"""The intake pipeline: one message, one pass, one transaction, then the ack."""
