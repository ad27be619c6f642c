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


CHANNELS_TOML = """
[[channels]]
name = "ozon"
kind = "ozon"
base_url = "https://api-seller.ozon.ru"
client_id = "123"
api_key = "from-file"
warehouse_id = 22142605386000
[[channels]]
name = "wb"
kind = "wildberries"
base_url = "https://marketplace-api.wildberries.ru"
token = "from-file"
warehouse_id = 1
"""


def test_channel_secrets_come_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text(CHANNELS_TOML)
    monkeypatch.setenv("INVENTORY_CHANNEL_OZON_API_KEY", "from-env")
    monkeypatch.setenv("INVENTORY_CHANNEL_WB_TOKEN", "wb-env")
    ozon, wb = load_settings(path).channels
    assert ozon.api_key.get_secret_value() == "from-env"
    assert ozon.client_id == "123"
    assert wb.token.get_secret_value() == "wb-env"
    assert "from-env" not in repr(ozon)


def test_a_config_file_may_hold_no_secret_at_all(tmp_path, monkeypatch):
    """Issue 12: the README says secrets can stay out of the file; the variables must be
    applied before the (required) fields are validated."""
    path = tmp_path / "c.toml"
    path.write_text(
        CHANNELS_TOML.replace('api_key = "from-file"\n', "")
        .replace('token = "from-file"\n', "")
        .replace('client_id = "123"\n', "")
    )
    assert "from-file" not in path.read_text()
    monkeypatch.setenv("INVENTORY_CHANNEL_OZON_CLIENT_ID", "777")
    monkeypatch.setenv("INVENTORY_CHANNEL_OZON_API_KEY", "from-env")
    monkeypatch.setenv("INVENTORY_CHANNEL_WB_TOKEN", "wb-env")
    monkeypatch.setenv("INVENTORY_CHANNEL_WB_API_KEY", "not-a-wb-field")  # ignored, no error
    ozon, wb = load_settings(path).channels
    assert ozon.client_id == "777"
    assert ozon.api_key.get_secret_value() == "from-env"
    assert wb.token.get_secret_value() == "wb-env"


def test_a_missing_secret_is_named_with_its_variable_absent(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CHANNELS_TOML.replace('api_key = "from-file"\n', ""))
    with pytest.raises(ConfigError, match="api_key"):
        load_settings(path)


def test_channel_names_must_be_unique(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CHANNELS_TOML.replace('name = "wb"', 'name = "ozon"'))
    with pytest.raises(ConfigError, match="unique"):
        load_settings(path)
