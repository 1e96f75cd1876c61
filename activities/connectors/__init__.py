"""Platform connectors: how an action reaches the platform, and how an appeal undoes it.

``build_router(settings.connector)`` gives the actions worker one ``ConnectorRouter``: Discord events
go to the Discord API, Twitch events to Helix (each when configured), everything else to the default
``log`` (dry run) or ``webhook`` (signed JSON). Every call carries the idempotency key
``<case>:<action>``; the actions ledger makes sure a retried activity never applies a sanction twice,
reading the platform back (``check``) before it repeats a call that may already have landed.
"""

from activities.connectors.base import (
    REVERSIBLE_ACTIONS,
    ActionRequest,
    CannotCheck,
    Connector,
    ConnectorConfigError,
    ConnectorError,
)
from activities.connectors.discord import DiscordConnector
from activities.connectors.log import LogConnector
from activities.connectors.router import ConnectorRouter, build_connector, build_router
from activities.connectors.twitch import TwitchConnector
from activities.connectors.webhook import WebhookConnector

__all__ = [
    "REVERSIBLE_ACTIONS",
    "ActionRequest",
    "CannotCheck",
    "Connector",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorRouter",
    "DiscordConnector",
    "LogConnector",
    "TwitchConnector",
    "WebhookConnector",
    "build_connector",
    "build_router",
]
