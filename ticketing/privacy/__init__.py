"""The desk's use of ``pii_guard``: the guard built from ``[pii]``, and who is never a consumer."""
