"""Context retrieval (similar confirmed violations from Qdrant, author/target history from PostgreSQL) and
recording the case (its row, audit entry and, for a confirmed violation, its similar-case vector).

The embedding comes from screening (one encoder pass per event); this activity never encodes text.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import asyncpg
from qdrant_client import AsyncQdrantClient, models
from temporalio import activity

from core.metrics import EVENTS_PROCESSED_TOTAL, STAGE_DURATION_MS
from core.storage import cases
from domain.models import CaseContext, CaseRecord, ContextInput, Decision, SimilarCase
from workflows import contract

log = logging.getLogger(__name__)
_POINT_NAMESPACE = uuid.UUID("5b0b6f5e-7c4d-4f0e-9b1c-3a9d2f0e6c11")


def point_id(case_id: str) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, case_id))


async def ensure_collection(client: AsyncQdrantClient, name: str, dim: int) -> None:
    """Create the similar-case collection (cosine distance over the screening embedding) if missing."""
    if not await client.collection_exists(name):
        await client.create_collection(name, vectors_config=models.VectorParams(size=dim,
                                                                                distance=models.Distance.COSINE))
        log.info("created qdrant collection", extra={"collection": name, "dim": dim})


class CaseIndex:
    """Confirmed violations in Qdrant, searchable by embedding."""

    def __init__(self, client: AsyncQdrantClient, collection: str) -> None:
        self.client, self.collection = client, collection

    async def similar(self, embedding: list[float], *, top_k: int, exclude: str) -> list[SimilarCase]:
        if not embedding:
            return []
        hits = await self.client.query_points(self.collection, query=embedding, limit=top_k + 1, with_payload=True)
        out = []
        for p in hits.points:
            payload = p.payload or {}
            if payload.get("case_id") == exclude:
                continue
            out.append(SimilarCase(case_id=str(payload.get("case_id", "")), score=round(float(p.score), 4),
                                   category=str(payload.get("category", "")),
                                   decision=str(payload.get("decision", "")),
                                   platform=str(payload.get("platform", ""))))
        return out[:top_k]

    async def add(self, rec: CaseRecord) -> None:
        payload = {"case_id": rec.case_id, "category": rec.decision.category.value,
                   "decision": rec.decision.decision.value, "platform": rec.event.platform,
                   "time": rec.event.received_at.isoformat()}
        await self.client.upsert(self.collection, points=[
            models.PointStruct(id=point_id(rec.case_id), vector=rec.screen.embedding, payload=payload)])


class ContextActivities:
    def __init__(self, pool: asyncpg.Pool, index: CaseIndex | None) -> None:
        self.pool, self.index = pool, index

    @activity.defn(name=contract.RETRIEVE_CONTEXT)
    async def retrieve_context(self, inp: ContextInput) -> CaseContext:
        started = time.perf_counter()
        ev = inp.event
        similar = (self.index.similar(inp.embedding, top_k=inp.top_k, exclude=ev.event_id)
                   if self.index else asyncio.sleep(0, result=[]))
        found, author, target, channel = await asyncio.gather(
            similar,
            cases.author_history(self.pool, ev.platform, ev.author_id),
            cases.target_history(self.pool, ev.platform, ev.target_id),
            cases.channel_cases_24h(self.pool, ev.platform, ev.channel_id),
        )
        STAGE_DURATION_MS.labels("context").observe((time.perf_counter() - started) * 1000)
        return CaseContext(similar_cases=found, author=author, target=target, channel_cases_24h=channel)


class RecordActivities:
    """Writes the case and its audit entry; indexes confirmed violations for future similar-case search."""

    def __init__(self, pool: asyncpg.Pool, index: CaseIndex | None = None) -> None:
        self.pool, self.index = pool, index

    @activity.defn(name=contract.RECORD_CASE)
    async def record_case(self, rec: CaseRecord) -> bool:
        inserted = await cases.record_case(self.pool, rec)
        if inserted:
            EVENTS_PROCESSED_TOTAL.labels(rec.event.platform, rec.path, rec.decision.decision.value).inc()
        if self.index and rec.decision.decision == Decision.ACTION and rec.screen.embedding:
            await self.index.add(rec)  # idempotent: the point id derives from the case id
        return inserted
