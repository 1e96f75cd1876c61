"""Which connector an event's platform uses, built once from settings.

``discord`` events go to the Discord API when ``discord_bot_token`` is set, ``twitch`` events to Helix
when ``twitch_token`` is set; every other platform (and those two when unconfigured) goes to the
default ``kind`` (``log`` or ``webhook``). A half-configured platform (token without guild or
moderator id) is refused at start, not on the first ban.
"""

from __future__ import annotations

from collections.abc import Mapping

from activities.connectors.base import ActionRequest, Connector, ConnectorConfigError, JSONDict
from activities.connectors.discord import DiscordConnector
from activities.connectors.log import LogConnector
from activities.connectors.twitch import TwitchConnector
from activities.connectors.webhook import WebhookConnector
from core.settings import ConnectorSettings


class ConnectorRouter:
    """Routes each request to its platform's connector. ``for_platform`` tells the ledger which one."""

    name = "router"

    def __init__(self, default: Connector, platforms: Mapping[str, Connector] | None = None) -> None:
        self.default = default
        self.platforms = {k.lower(): v for k, v in (platforms or {}).items()}

    def for_platform(self, platform: str) -> Connector:
        return self.platforms.get(platform.lower(), self.default)

    async def apply(self, req: ActionRequest) -> JSONDict:
        return await self.for_platform(req.event.platform).apply(req)

    async def revert(self, req: ActionRequest) -> JSONDict:
        return await self.for_platform(req.event.platform).revert(req)

    async def check(self, req: ActionRequest) -> JSONDict | None:
        return await self.for_platform(req.event.platform).check(req)

    async def check_revert(self, req: ActionRequest) -> JSONDict | None:
        return await self.for_platform(req.event.platform).check_revert(req)

    async def aclose(self) -> None:
        """Close every connector's HTTP client (the worker's exit stack calls this)."""
        for connector in {id(c): c for c in (self.default, *self.platforms.values())}.values():
            close = getattr(connector, "aclose", None)
            if close is not None:
                await close()


def build_default(settings: ConnectorSettings, *, development: bool = False) -> Connector:
    if settings.kind == "log":
        return LogConnector()
    if settings.kind == "webhook":
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
        return WebhookConnector(settings.webhook_url, secret, timeout_s=settings.timeout_s,
                                require_secret=not development)
    raise ConnectorConfigError(f"unknown connector '{settings.kind}': set SAFETY_CONNECTOR__KIND to 'log' or 'webhook'")


def build_discord(settings: ConnectorSettings) -> DiscordConnector | None:
    if settings.discord_bot_token is None:
        return None
    return DiscordConnector(token=settings.discord_bot_token.get_secret_value(), guild_id=settings.discord_guild_id,
                            base_url=settings.discord_api_base, timeout_s=settings.timeout_s,
                            warning_template=settings.discord_warning_template)


def build_twitch(settings: ConnectorSettings) -> TwitchConnector | None:
    if settings.twitch_token is None:
        return None
    return TwitchConnector(token=settings.twitch_token.get_secret_value(), client_id=settings.twitch_client_id,
                           moderator_id=settings.twitch_moderator_id, base_url=settings.twitch_api_base,
                           timeout_s=settings.timeout_s)


def build_connector(settings: ConnectorSettings, platform: str, *, development: bool = False) -> Connector:
    """The connector one platform's events use (the default kind when that platform is not configured)."""
    builder = {"discord": build_discord, "twitch": build_twitch}.get(platform.lower())
    specific = builder(settings) if builder else None
    return specific if specific is not None else build_default(settings, development=development)


def build_router(settings: ConnectorSettings, *, development: bool = False) -> ConnectorRouter:
    """All connectors the actions worker needs, each built once (one HTTP client per platform)."""
    platforms: dict[str, Connector] = {}
    if (discord := build_discord(settings)) is not None:
        platforms["discord"] = discord
    if (twitch := build_twitch(settings)) is not None:
        platforms["twitch"] = twitch
    return ConnectorRouter(build_default(settings, development=development), platforms)
