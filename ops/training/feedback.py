"""Human labels (moderator reviews and appeal outcomes) exported as extra training data.

``safety model train`` appends these to its dataset. An appeal label for a case supersedes the review
label of the same case (the appeal is the later, more considered decision).
"""

from __future__ import annotations

from typing import Any

import asyncpg


async def export_labels(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """One row per labelled case: ``text`` (the message), ``label`` (True = harmful), ``category``, ``source``."""
    rows = await pool.fetch(
        """
        SELECT DISTINCT ON (l.case_id) c.content AS text, l.label, l.category, l.source
        FROM labels l JOIN cases c ON c.case_id = l.case_id
        ORDER BY l.case_id, (l.source = 'appeal') DESC, l.created_at DESC
        """)
    return [dict(r) for r in rows]
