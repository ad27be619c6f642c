"""Issue 12 §13: with the compose file's defaults every ``/v1`` call answered 401 (no API token
was set anywhere). The engine service now takes its token from ``INVENTORY_API_TOKEN``, which
compose requires (``${VAR:?message}``: ``docker compose`` stops with that message when it is
unset), and the variable name it sets is a real setting."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from inventory_engine.config import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REQUIRED = re.compile(r"^\$\{(?P<name>\w+):\?(?P<message>[^}]+)\}$")


def engine_environment() -> dict[str, str]:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    return {k: str(v) for k, v in compose["services"]["engine"]["environment"].items()}


def test_the_engine_service_requires_a_token_from_the_environment() -> None:
    value = engine_environment().get("INVENTORY_HTTP__API_TOKEN")
    assert value is not None, "the engine service sets no API token: /v1 would answer 401"
    required = REQUIRED.match(value)
    assert required, f"{value!r} is not a required variable (${{NAME:?message}})"
    assert required["name"] == "INVENTORY_API_TOKEN"
    assert "INVENTORY_API_TOKEN" in required["message"]


def test_the_variable_compose_sets_becomes_the_api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("INVENTORY_"):
            monkeypatch.delenv(name)
    for name, value in engine_environment().items():
        if name != "INVENTORY_CONFIG":
            # As compose resolves it with INVENTORY_API_TOKEN=s3cret-token-for-the-shop.
            monkeypatch.setenv(name, REQUIRED.sub("s3cret-token-for-the-shop", value))
    settings = load_settings(DEPLOY / "config.example.toml")
    assert settings.http.api_token is not None
    assert settings.http.api_token.get_secret_value() == "s3cret-token-for-the-shop"


def test_the_deploy_readme_says_to_set_the_token() -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "INVENTORY_API_TOKEN" in text
