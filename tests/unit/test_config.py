"""Settings: TOML file, INVENTORY_* environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory_engine.config import load_settings
from inventory_engine.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "INVENTORY_CONFIG",
        "INVENTORY_REDIS_URL",
        "INVENTORY_REDIS__URL",
        "INVENTORY_ACCOUNT",
    ):
        monkeypatch.delenv(name, raising=False)


def test_load_settings_defaults_to_the_embedded_server():
    settings = load_settings()
    assert settings.redis.url is None
    assert settings.account == "default"
    assert settings.embedded.appendfsync == "always"


def test_load_settings_reads_the_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('account = "shop2"\n[redis]\nurl = "redis://127.0.0.1:6390/1"\n')
    settings = load_settings(path)
    assert settings.redis.url == "redis://127.0.0.1:6390/1"
    assert settings.account == "shop2"


def test_load_settings_environment_beats_the_file(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[redis]\nurl = "redis://127.0.0.1:6390/1"\n')
    monkeypatch.setenv("INVENTORY_REDIS__URL", "redis://127.0.0.1:7000/0")
    assert load_settings(path).redis.url == "redis://127.0.0.1:7000/0"


def test_load_settings_accepts_the_flat_redis_url_variable(monkeypatch):
    monkeypatch.setenv("INVENTORY_REDIS_URL", "redis://127.0.0.1:7001/0")
    assert load_settings().redis.url == "redis://127.0.0.1:7001/0"


def test_load_settings_uses_inventory_config(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('account = "from-env-file"\n')
    monkeypatch.setenv("INVENTORY_CONFIG", str(path))
    assert load_settings().account == "from-env-file"


def test_load_settings_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ('[redis]\nurl = "http://x"\n', "redis.url"),
        ('[redis]\nuri = "redis://x"\n', "redis.uri"),
        ('[embedded]\nappendfsync = "sometimes"\n', "embedded.appendfsync"),
        ("[redis\n", "cannot read"),
    ],
)
def test_load_settings_names_the_bad_value(tmp_path, toml, fragment):
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert fragment in str(caught.value)


def test_example_config_in_deploy_loads():
    settings = load_settings(REPO / "deploy" / "config.example.toml")
    assert settings.redis.url == "redis://127.0.0.1:6379/0"
