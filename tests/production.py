"""Settings as a production deployment would give them: every secret the production guards require,
random and strong. Tests that check one guard override just the field under test, so the error they
expect is the only one left."""

from __future__ import annotations

import base64
import os
import secrets
from typing import Any

from pydantic import SecretStr

from core.settings import Settings


def production_fields() -> dict[str, Any]:
    """Fresh strong values for every field the production guards check (new ones on each call)."""
    return {
        "environment": "production",
        "secret_key": SecretStr(secrets.token_hex(32)),
        "audit_key": SecretStr(secrets.token_hex(32)),
        "backup_key": SecretStr(secrets.token_hex(32)),
        "temporal": {"address": "t:7233"},
        "database": {"url": "postgresql://db/safety", "app_password": secrets.token_urlsafe(24)},
        "redis": {"url": "redis://r:6379/0"},
        "codec": {"keys": SecretStr("k1:" + base64.b64encode(os.urandom(32)).decode())},
    }


def production_settings(**overrides: Any) -> Settings:
    """``Settings`` in production mode; ``overrides`` replace whole fields (``codec={...}`` etc.)."""
    return Settings(**{**production_fields(), **overrides})
