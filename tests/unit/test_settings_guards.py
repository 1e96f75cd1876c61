"""Production guards of the settings: weak secrets are refused outside development; worker metrics
listen on loopback unless a deployment opens them."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr, ValidationError

from core.settings import Settings, weak_secret
from tests.production import production_settings

REPO = Path(__file__).resolve().parents[2]


def _production(**kw: object) -> Settings:
    return production_settings(**kw)


@pytest.mark.parametrize(("field", "env"), [("secret_key", "SAFETY_SECRET_KEY"), ("jwt_secret", "SAFETY_JWT_SECRET"),
                                            ("audit_key", "SAFETY_AUDIT_KEY"), ("backup_key", "SAFETY_BACKUP_KEY")])
@pytest.mark.parametrize("weak", ["abc", "changeme-changeme-changeme-changeme", "a" * 64, "0123456789" * 4,
                                  "ab" * 32])
def test_production_refuses_weak_secrets(field: str, env: str, weak: str) -> None:
    strong = {"secret_key": SecretStr(secrets.token_hex(32))}
    with pytest.raises(ValidationError, match=env):
        _production(**{**strong, field: SecretStr(weak)})


def test_production_refuses_a_weak_webhook_secret() -> None:
    with pytest.raises(ValidationError, match="SAFETY_CONNECTOR__WEBHOOK_SECRET"):
        _production(secret_key=SecretStr(secrets.token_hex(32)),
                    connector={"webhook_secret": "hunter2"})  # type: ignore[arg-type]


@pytest.mark.parametrize("strong", [secrets.token_hex(32), secrets.token_urlsafe(32), secrets.token_hex(16)])
def test_production_accepts_random_secrets(strong: str) -> None:
    assert weak_secret(strong) is None
    s = _production(secret_key=SecretStr(strong), jwt_secret=SecretStr(secrets.token_urlsafe(48)))
    assert s.secret_key.get_secret_value() == strong


def test_development_keeps_its_defaults() -> None:
    assert Settings().environment == "development"  # the dev default secret is fine here


def test_worker_metrics_listen_on_loopback_unless_opened() -> None:
    assert Settings().worker.metrics_host == "127.0.0.1"
    from core.temporal import metrics_runtime  # noqa: F401 - the SDK runtime takes the same host

    # The deployments whose Prometheus scrapes workers over the network open it explicitly.
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert compose["x-safety-image"]["environment"]["SAFETY_WORKER__METRICS_HOST"] == "0.0.0.0"
    k8s = yaml.safe_load((REPO / "infra/k8s/base/configmap.yaml").read_text())
    assert k8s["data"]["SAFETY_WORKER__METRICS_HOST"] == "0.0.0.0"


def test_safety_up_generates_a_dev_secret_key_once(tmp_path: Path) -> None:
    """Development without SAFETY_SECRET_KEY: `safety up` makes a random key (kept, mode 0600) and hands it
    to the API and workers, so event ids are not derived from the public default."""
    from ops.stack import Stack

    stack = Stack(Settings(data_dir=tmp_path))
    first = stack._dev_secret_key()
    assert first is not None and weak_secret(first) is None and first != "dev-insecure-secret"
    assert (tmp_path / "dev-secret-key").stat().st_mode & 0o777 == 0o600
    assert Stack(Settings(data_dir=tmp_path))._dev_secret_key() == first  # stable across restarts
    assert Stack(Settings(data_dir=tmp_path, secret_key=SecretStr(secrets.token_hex(32))))._dev_secret_key() is None
