"""The intake pipeline: one message, one pass, one transaction, then the ack."""

from ticketing.pipeline.guard import NoGuard, PiiStage
from ticketing.pipeline.replies import NoReplies, ReplyOrder, ReplySink
from ticketing.pipeline.runner import IntakePipeline, dedup_key
from ticketing.pipeline.types import (
    GuardResult,
    Identity,
    Outcome,
    PermanentRejection,
    RawMessage,
)

__all__ = [
    "GuardResult",
    "Identity",
    "IntakePipeline",
    "NoGuard",
    "NoReplies",
    "Outcome",
    "PermanentRejection",
    "PiiStage",
    "RawMessage",
    "ReplyOrder",
    "ReplySink",
    "dedup_key",
]
