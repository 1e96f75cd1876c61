"""HTTP schemas (named by role). They never enter workflow history; domain models do."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ID = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@#\-]+$")


class EventMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    timestamp: datetime | None = Field(None, description="When the message was sent on the platform (ISO 8601).")
    user_reputation: float | None = Field(None, ge=0, le=100,
                                          description="Reputation of the target user (0..1 or 0..100).")
    author_reputation: float | None = Field(None, ge=0, le=100, description="Reputation of the author.")
    channel_history_count: int | None = Field(None, ge=0, le=10**9, description="Messages seen in the channel.")


# The event types the seed's integration guide sends, mapped onto the internal ones (which stay accepted
# as they are). A deletion has no content left to moderate: it is refused with a message saying so.
SEED_EVENT_TYPES: dict[str, str] = {
    "message_created": "message",
    "message_edited": "message_edit",
    "message_updated": "message_edit",
}
EventType = Literal["message", "message_edit", "reply", "direct_message", "username", "profile"]


class EventIn(BaseModel):
    """A chat event from a platform. ``user_id`` is the user the message is aimed at (the target)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{
        "event_type": "message_created", "platform": "discord", "channel_id": "general", "user_id": "user_456",
        "author_id": "user_123", "content": "you are worthless, nobody wants you here",
        "message_id": "1180000000000000001",
        "metadata": {"timestamp": "2026-11-29T12:00:00Z", "user_reputation": 0.8, "author_reputation": 0.3,
                     "channel_history_count": 150}}]})

    event_type: EventType = Field("message", description=(
        "message, message_edit, reply, direct_message, username or profile; the seed's names are accepted too: "
        "message_created (= message), message_edited and message_updated (= message_edit)."))
    platform: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_\-]+$",
                          description="Platform name, lower case (discord, twitch, webhook, ...).")
    channel_id: str = _ID
    user_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@#\-]+$",
                                description="The target: the user the message is aimed at, if any.")
    author_id: str = _ID
    content: str = Field(min_length=1, description="Message text; at most SAFETY_API__MAX_CONTENT_BYTES bytes UTF-8.")
    message_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@#\-]+$",
                                   description="Platform message id; the same id ingested twice gives one case.")
    metadata: EventMetadata = Field(default_factory=EventMetadata)

    @field_validator("event_type", mode="before")
    @classmethod
    def _seed_event_type(cls, value: object) -> object:
        if value == "message_deleted":
            raise ValueError("message_deleted is not moderated: a deleted message has no content to screen. "
                             "Send message_created (or message) for new messages and message_edited for edits")
        return SEED_EVENT_TYPES.get(value, value) if isinstance(value, str) else value


class IngestAccepted(BaseModel):
    event_id: str
    status: Literal["queued"] = "queued"
    processing_url: str
    duplicate: bool = Field(False, description="True when this platform message was already ingested.")


class EventBatchIn(BaseModel):
    """Many chat events in one request (a bot or gateway that buffers its platform's stream)."""

    events: list[EventIn] = Field(min_length=1, description=(
        "At most SAFETY_API__MAX_BATCH_EVENTS events (default 500). The batch is validated as a whole: one "
        "invalid event refuses the batch with 422 naming it (events.<index>.<field>) and nothing is ingested."))


class BatchItemAccepted(BaseModel):
    index: int = Field(description="Position of the event in the request.")
    event_id: str | None = Field(None, description="The case id; absent only when the event was not accepted.")
    status: Literal["queued", "recorded", "not_accepted"] = Field(description=(
        "queued: its workflow is running; recorded: prescreened clean and already recorded (prescreen mode); "
        "not_accepted: Temporal was unreachable for this event, send it again (same message_id: no duplicate)."))
    processing_url: str | None = None
    duplicate: bool = False
    error: str | None = None


class BatchAccepted(BaseModel):
    accepted: int
    duplicates: int
    not_accepted: int
    results: list[BatchItemAccepted]


class ActionPublic(BaseModel):
    action: str
    status: str
    connector: str = ""
    detail: str = ""


class OutcomePublic(BaseModel):
    path: str
    risk_score: float
    category: str
    category_scores: dict[str, float] = Field(default_factory=dict)
    decision: str
    needs_review: bool
    actions: list[ActionPublic] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    policy_version: str = ""
    model_version: str = ""
    stage_ms: dict[str, float] = Field(default_factory=dict)
    completed_at: datetime | None = None
    review_status: Literal["pending", "decided"] | None = Field(
        None, description="pending: waiting for a moderator (POST /v1/reviews/{id}/decision); decided: reviewed.")


class EventStatus(BaseModel):
    event_id: str
    status: Literal["queued", "processing", "completed", "failed"]
    stage: str
    risk_score: float | None = None
    outcome: OutcomePublic | None = None
    workflow_id: str
    temporal_ui_url: str | None = Field(None, description="Moderators only: the case in the Temporal Web UI.")


class ErrorOut(BaseModel):
    detail: str
    errors: list[dict[str, object]] | None = None


class PayloadJSON(BaseModel):
    """A ``temporal.api.common.v1.Payload`` in protobuf JSON (Temporal's remote codec protocol): metadata
    values and data are base64."""

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class PayloadsJSON(BaseModel):
    payloads: list[PayloadJSON] = Field(default_factory=list, max_length=1000)


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, str]
