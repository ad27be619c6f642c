"""Deploy files: they parse, query only metrics the engine exports, and agree with each other.

The dashboard and the alert rules are PromQL the engine never runs; a renamed metric would only
show up as an empty panel or an alert that can never fire. These tests read every expression
and check each metric name against :func:`exported_series`.
"""

from __future__ import annotations

import configparser
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from inventory_engine.config import load_settings
from inventory_engine.metrics.definitions import METRICS, exported_series

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "inventory-engine.json"
COMPOSE = DEPLOY / "docker-compose.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "inventory-engine.yml"
SYSTEMD = DEPLOY / "systemd"

YAML_FILES = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")])
JSON_FILES = sorted(DEPLOY.rglob("*.json"))

# --- PromQL: the metric names an expression selects ---------------------------------------

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$:])[A-Za-z_:][\w:]*")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
    }
)


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, aggregations,
    keywords, label names (in ``{}``, ``by (...)``), strings or durations."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if word.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            "histogram_quantile(0.99, sum by (le, channel) (rate(inventory_propagation_seconds_"
            'bucket{channel=~"$channel", le="2.0"}[$__rate_interval])))',
            {"inventory_propagation_seconds_bucket"},
        ),
        (
            "sum(rate(a_total[5m])) by (channel) / on (channel) b offset 1h > bool 0",
            {"a_total", "b"},
        ),
        ('x > 100 and deriv(x{queue="events"}[10m]) > 0 or absent(up{job="a b"})', {"x", "up"}),
        ("increase(inventory_oversold_total[1e3s]) > 1e3", {"inventory_oversold_total"}),
        ("vector(1) + time()", set()),
    ],
)
def test_metric_names_finds_the_selected_series(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_a_misspelt_metric_is_not_an_exported_series() -> None:
    """What the checks below rely on: a typo is an unknown name, not silently ignored."""
    names = metric_names("sum(increase(inventory_oversold_totl[10m])) > 0")
    assert names == {"inventory_oversold_totl"}
    assert not names <= exported_series()


# --- Every file parses -----------------------------------------------------------------------


def test_deploy_holds_the_expected_files() -> None:
    expected = {DASHBOARD, COMPOSE, PROMETHEUS, ALERTS, DATASOURCES, DASHBOARD_PROVIDER}
    assert expected <= {*YAML_FILES, *JSON_FILES}
    for name in ("Dockerfile", "README.md", "redis.conf", "config.example.toml"):
        assert (DEPLOY / name).is_file(), name


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict)


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_json_parses(path: Path) -> None:
    assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict)


def _yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


# --- Grafana dashboard -----------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _dashboard_exprs() -> list[str]:
    dashboard = _dashboard()
    exprs = [
        target["expr"]
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        label_values = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*", query)
        exprs.append(label_values.group(1) if label_values else query)
    return exprs


def test_every_dashboard_query_uses_exported_metrics() -> None:
    exprs = _dashboard_exprs()
    assert len(exprs) >= 10
    exported = exported_series()
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= exported, f"{sorted(names - exported)} not exported (in {expr!r})"
        assert "__name__" not in expr


def test_dashboard_covers_what_the_issue_asks_for() -> None:
    used = set().union(*(metric_names(expr) for expr in _dashboard_exprs()))
    for series in (
        "inventory_propagation_seconds_bucket",
        "inventory_throttle_wait_seconds_bucket",
        "inventory_push_items_total",
        "inventory_push_requests_total",
        "inventory_queue_depth",
        "inventory_pending_changes",
        "inventory_parked_items",
        "inventory_oversold_total",
        "inventory_workers",
    ):
        assert series in used, series


def test_propagation_panel_shows_p50_and_p99_per_channel_against_2_seconds() -> None:
    panels = [
        panel
        for panel in _panels(_dashboard()["panels"])
        if panel.get("type") == "timeseries"
        and any(
            "inventory_propagation_seconds_bucket" in target.get("expr", "")
            for target in panel.get("targets", [])
        )
    ]
    assert len(panels) == 1
    panel = panels[0]
    exprs = [re.sub(r"\s+", " ", target["expr"]) for target in panel["targets"]]
    for quantile in ("0.5", "0.99"):
        assert any(expr.startswith(f"histogram_quantile({quantile},") for expr in exprs)
    assert all("by (le, channel)" in expr and "rate(" in expr for expr in exprs)
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["unit"] == "s"
    assert 2 in [step["value"] for step in defaults["thresholds"]["steps"]]
    assert "line" in defaults["custom"]["thresholdsStyle"]["mode"]


def test_dashboard_is_a_grafana_dashboard_on_the_provisioned_datasource() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"]
    assert dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    panels = list(_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource_uid = _yaml(DATASOURCES)["datasources"][0]["uid"]
    assert variables["datasource"]["current"]["value"] == datasource_uid
    allowed = {"${datasource}", datasource_uid}
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"], panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in allowed, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in allowed, panel["title"]


# --- Prometheus ------------------------------------------------------------------------------


def _rules() -> dict[str, dict[str, Any]]:
    rules = [rule for group in _yaml(ALERTS)["groups"] for rule in group["rules"]]
    by_name = {rule["alert"]: rule for rule in rules}
    assert len(by_name) == len(rules), "duplicate alert names"
    return by_name


def test_every_alert_uses_exported_metrics() -> None:
    exported = exported_series()
    for name, rule in _rules().items():
        names = metric_names(rule["expr"])
        assert names, name
        assert names <= exported, f"{name}: {sorted(names - exported)} not exported"


def test_every_alert_has_a_duration_severity_and_text() -> None:
    for name, rule in _rules().items():
        assert re.fullmatch(r"\d+[smhd]", str(rule["for"])), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name


def test_the_alerts_the_issue_names_exist() -> None:
    rules = _rules()
    expected = {
        "PropagationP99Above2s": "inventory_propagation_allowed_seconds_bucket",
        "Oversold": "inventory_oversold_total",
        "EventsQueueGrowing": "inventory_queue_depth",
        "ChannelPushErrors": "inventory_push_requests_total",
        "NoWorkers": "inventory_workers",
        "ParkedItems": "inventory_parked_items",
        "FailedJobs": "inventory_failed_jobs",
    }
    for alert, series in expected.items():
        assert alert in rules, alert
        assert series in metric_names(rules[alert]["expr"]), alert
    propagation = " ".join(rules["PropagationP99Above2s"]["expr"].split())
    assert propagation.startswith("histogram_quantile(0.99,")
    assert propagation.endswith("> 2")
    assert re.fullmatch(
        r"increase\(inventory_oversold_total\[\w+\]\) > 0", rules["Oversold"]["expr"].strip()
    )
    assert 'queue="events"' in rules["EventsQueueGrowing"]["expr"]
    assert 'status!="ok"' in rules["ChannelPushErrors"]["expr"]
    assert rules["Oversold"]["labels"]["severity"] == "critical"


def test_alert_label_values_are_ones_the_engine_uses() -> None:
    """Queue and status values in matchers: a wrong enum value never matches anything."""
    queue_values = {"events", "push", "events_scheduled", "push_scheduled"}
    status_values = {"ok", "rate_limited", "unavailable", "rejected"}
    exprs = [rule["expr"] for rule in _rules().values()] + _dashboard_exprs()
    for expr in exprs:
        for value in re.findall(r'queue=~?"([^"]*)"', expr):
            assert set(value.split("|")) <= queue_values, expr
        for value in re.findall(r'status!?=~?"([^"]*)"', expr):
            assert set(value.split("|")) <= status_values, expr


def test_specs_have_the_labels_the_rules_group_by() -> None:
    labels = {spec.name: set(spec.labels) for spec in METRICS}
    assert labels["inventory_propagation_seconds"] == {"channel"}
    assert labels["inventory_push_requests"] == {"channel", "status"}
    assert labels["inventory_queue_depth"] == {"queue"}
    assert labels["inventory_workers"] == {"queue"}


# --- Compose ---------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return _yaml(COMPOSE)


def _resolve(value: str) -> str:
    """``${VAR:-default}`` as compose resolves it with VAR unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Bind mounts of a service, host path (relative to deploy/) -> container path."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = _resolve(volume).split(":")
        if source.startswith("."):
            mounts[os.path.normpath(source)] = target
    return mounts


def test_compose_runs_the_whole_stack() -> None:
    services = _compose()["services"]
    assert {"redis", "engine", "worker", "prometheus", "grafana"} <= set(services)
    assert services["engine"]["command"] == ["serve"]
    assert services["worker"]["command"][0] == "worker"
    queues = services["worker"]["command"][services["worker"]["command"].index("--queues") + 1]
    assert set(queues.split(",")) <= {"events", "push"}


def test_compose_redis_keeps_an_always_fsynced_append_only_file() -> None:
    redis = _compose()["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_compose_engine_environment_gives_the_intended_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The variable names are real settings: the engine listens on every interface of its
    container, on the port Prometheus scrapes, and uses the compose Redis."""
    for name in list(os.environ):
        if name.startswith("INVENTORY_"):
            monkeypatch.delenv(name)
    compose = _compose()
    environment = compose["services"]["engine"]["environment"]
    for name, value in environment.items():
        if name != "INVENTORY_CONFIG":
            monkeypatch.setenv(name, str(value))
    config = _mounts(compose["services"]["engine"])
    example = next(src for src, dst in config.items() if dst == environment["INVENTORY_CONFIG"])
    settings = load_settings(DEPLOY / example)
    assert settings.http.host == "0.0.0.0"  # noqa: S104 - inside the container
    assert settings.redis.url is not None
    assert settings.redis.url.startswith("redis://redis:6379/")
    target = _yaml(PROMETHEUS)["scrape_configs"][0]["static_configs"][0]["targets"][0]
    assert target == f"engine:{settings.http.port}"
    worker_env = compose["services"]["worker"]["environment"]
    assert worker_env["INVENTORY_REDIS__URL"] == environment["INVENTORY_REDIS__URL"]


CLUSTER_COMPOSE = DEPLOY / "docker-compose.cluster.yml"


def test_compose_cluster_variant_puts_the_ledger_on_a_cluster_and_the_queues_on_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``-f docker-compose.yml -f docker-compose.cluster.yml``: three cluster primaries with an
    always-fsynced AOF, joined once; engine and workers take the cluster for the ledger and the
    plain Redis for the queues, as settings the engine accepts."""
    for name in list(os.environ):
        if name.startswith("INVENTORY_"):
            monkeypatch.delenv(name)
    main, cluster = _compose(), _yaml(CLUSTER_COMPOSE)
    services = cluster["services"]
    nodes = [name for name in services if name.startswith("ledger-")]
    assert len(nodes) == 3
    for name in nodes:
        command = services[name]["command"]
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert command[command.index("--appendfsync") + 1] == "always"
        assert any(volume.endswith(":/data") for volume in services[name]["volumes"])
        assert "ports" not in services[name]
    init = " ".join(services["cluster-init"]["command"])
    assert all(f"{name}:6379" in init for name in nodes)
    assert "--cluster-replicas 0" in init
    for role in ("engine", "worker"):
        environment = {**main["services"][role]["environment"], **services[role]["environment"]}
        for name, value in environment.items():
            if name != "INVENTORY_CONFIG":
                monkeypatch.setenv(name, str(value))
        settings = load_settings(DEPLOY / "config.example.toml")
        assert settings.redis.is_cluster
        assert settings.redis.url is not None
        assert settings.redis.url.split("//")[1].split(":")[0] in nodes
        assert settings.redis.queue_url == "redis://redis:6379/0"
        assert services[role]["depends_on"]["cluster-init"]["condition"] == (
            "service_completed_successfully"
        )


def test_compose_bind_mounts_exist() -> None:
    for name, service in _compose()["services"].items():
        for source in _mounts(service):
            assert (DEPLOY / source).exists(), f"{name}: {source}"


def test_compose_builds_the_image_from_the_dockerfile() -> None:
    build = _compose()["services"]["engine"]["build"]
    dockerfile = (DEPLOY / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile == (DEPLOY / "Dockerfile").resolve()
    text = dockerfile.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11", text, re.MULTILINE)
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user
    assert user[-1] not in {"root", "0"}
    assert re.search(r'^ENTRYPOINT \["inventory-engine"\]', text, re.MULTILINE)


def test_prometheus_loads_the_rules_compose_mounts() -> None:
    """Rule files are relative to the config file, in compose and in a checkout alike."""
    config = _yaml(PROMETHEUS)
    mounts = _mounts(_compose()["services"]["prometheus"])
    assert mounts["prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    in_container = PurePosixPath(mounts["prometheus/prometheus.yml"]).parent
    assert [str(in_container / rule) for rule in config["rule_files"]] == [
        mounts["prometheus/alerts.yml"]
    ]
    assert [PROMETHEUS.parent / rule for rule in config["rule_files"]] == [ALERTS]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"


def test_grafana_provisioning_points_where_compose_mounts_the_dashboards() -> None:
    mounts = _mounts(_compose()["services"]["grafana"])
    provider = _yaml(DASHBOARD_PROVIDER)["providers"][0]
    assert provider["type"] == "file"
    assert PurePosixPath(provider["options"]["path"]) == PurePosixPath(mounts["grafana/dashboards"])
    assert mounts["grafana/provisioning"] == "/etc/grafana/provisioning"
    datasource = _yaml(DATASOURCES)["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert any(p.endswith(":9090") for p in _compose()["services"]["prometheus"]["ports"])


# --- systemd ---------------------------------------------------------------------------------


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    assert parser.read(SYSTEMD / name, encoding="utf-8")
    return parser


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("inventory-engine.service", "inventory-engine serve"),
        ("inventory-engine-worker@.service", "inventory-engine worker --queues %i"),
    ],
)
def test_systemd_units(name: str, command: str) -> None:
    unit = _unit(name)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    assert unit["Service"]["ExecStart"].startswith("/")
    assert unit["Service"]["ExecStart"].endswith(command)
    assert unit["Service"]["User"] not in {"root", "0"}
    assert unit["Service"]["Restart"] in {"always", "on-failure"}
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_readme_explains_the_fsync_trade_off() -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "appendfsync always" in text
    assert "everysec" in text


def _setting_names(model: type[BaseModel], prefix: str = "") -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _setting_names(annotation, f"{prefix}{name}.")
        elif name not in ("channels", "accounts"):  # arrays of tables, checked on their own
            names.add(prefix + name)
    return names


def test_the_example_config_loads_and_names_every_setting(monkeypatch, tmp_path):
    """Issue 12: the example lacked api_token, channels, workers, alerts and webhooks."""
    from inventory_engine.config import (
        AccountSettings,
        OzonSettings,
        Settings,
        WebhookSettings,
        WildberriesSettings,
        YandexMarketSettings,
    )

    for name in [n for n in os.environ if n.startswith("INVENTORY_")]:
        monkeypatch.delenv(name)
    path = DEPLOY / "config.example.toml"
    settings = load_settings(path)
    assert settings.channels == []  # as shipped: sandbox mode
    text = path.read_text(encoding="utf-8")
    mentioned = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, flags=re.MULTILINE))
    sections = set(re.findall(r"^\[([a-z_]+)\]", text, flags=re.MULTILINE))
    for name in sorted(_setting_names(Settings)):
        section, _, field = name.rpartition(".")
        assert field in mentioned, name
        assert not section or section in sections, name
    for kind in (OzonSettings, WildberriesSettings, YandexMarketSettings, WebhookSettings):
        for field in kind.model_fields:
            assert field in mentioned, (kind.__name__, field)
    assert "# [[accounts]]" in text
    assert "# [[accounts.channels]]" in text
    for field in AccountSettings.model_fields:
        assert field in mentioned or field == "channels", ("AccountSettings", field)

    # The commented channel and account examples are valid settings as they stand.
    channels_part, accounts_part = text.split("# [[channels]]", 1)[1].split("# [[accounts]]")
    channels_part = channels_part.rsplit("\n\n", 1)[0]  # the accounts' prose stays out
    channels = re.sub(r"^# ?", "", channels_part, flags=re.MULTILINE)
    uncommented = tmp_path / "channels.toml"
    uncommented.write_text("[[channels]]" + channels, encoding="utf-8")
    kinds = [c.kind for c in load_settings(uncommented).channels]
    assert kinds == ["ozon", "wildberries", "yandex_market", "webhook"]
    accounts = re.sub(r"^# ?", "", accounts_part, flags=re.MULTILINE)
    uncommented.write_text("[[accounts]]" + accounts, encoding="utf-8")
    monkeypatch.setenv("INVENTORY_ACCOUNT_SHOP_A_CHANNEL_OZON_API_KEY", "key")
    example = load_settings(uncommented)
    assert example.account_names() == ["shop-a"]
    assert [c.kind for c in example.for_account("shop-a").channels] == ["ozon"]


def test_the_docker_build_context_leaves_a_checkouts_own_files_out():
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert {".git", ".venv", ".hypothesis"} <= set(ignored)
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    for line in dockerfile.splitlines():
        if line.startswith("COPY"):
            assert not any(part.strip("/") in ignored for part in line.split()[1:-1]), line
