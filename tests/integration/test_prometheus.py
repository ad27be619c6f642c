"""The monitoring in ``deploy/`` proven against a real Prometheus (issue 12, item 18).

* ``promtool check config`` / ``check rules`` on ``deploy/prometheus``;
* ``promtool test rules`` on ``deploy/prometheus/tests/*.yml``, which must hold, for every alert
  in ``alerts.yml``, a case where it fires and one where it stays quiet;
* a live ``serve`` scraped every second by a real ``prometheus`` (the deploy config, its target
  and intervals changed) while traffic flows: every query of the Grafana dashboard returns a
  series with a number, every alert rule evaluates without error, and an oversell fires
  ``Oversold``.

``promtool`` and ``prometheus`` come from PATH (Debian: ``apt-get install prometheus``). When
missing they are installed with apt-get as root on CI (``CI`` set) or when
``INVENTORY_TEST_INSTALL_PROMETHEUS=1``; otherwise these tests skip, naming what is missing.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.conftest import AUTH, free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "inventory-engine.json"

INSTALL_VARIABLE = "INVENTORY_TEST_INSTALL_PROMETHEUS"


def _load_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), path
    return loaded


def alert_names() -> list[str]:
    return [rule["alert"] for group in _load_yaml(ALERTS)["groups"] for rule in group["rules"]]


# --- promtool and prometheus ------------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusTools:
    promtool: str
    prometheus: str


def _find_tools() -> PrometheusTools | None:
    promtool, prometheus = shutil.which("promtool"), shutil.which("prometheus")
    return PrometheusTools(promtool, prometheus) if promtool and prometheus else None


def _install_from_apt() -> str:
    """Debian's ``prometheus`` package (prometheus and promtool); what went wrong, or ''."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"],
    ):
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=600, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(command)}` failed: {exc}"
        if done.returncode:
            return f"`{' '.join(command)}` exited {done.returncode}: {done.stderr.strip()[-500:]}"
    return ""


@pytest.fixture(scope="session")
def prometheus_tools() -> PrometheusTools:
    """promtool and prometheus from PATH, installed with apt-get when allowed; else a skip."""
    tools = _find_tools()
    if tools is not None:
        return tools
    missing = "`promtool` and `prometheus` are not on PATH"
    allowed = os.environ.get("CI") or os.environ.get(INSTALL_VARIABLE) == "1"
    if not allowed:
        pytest.skip(
            f"{missing}: install Debian's `prometheus` package, or run as root with "
            f"{INSTALL_VARIABLE}=1 (or CI set) to let the tests install it"
        )
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{missing}, and installing them needs root and apt-get")
    problem = _install_from_apt()
    tools = _find_tools()
    if tools is None:
        pytest.skip(f"{missing}; installing Debian's `prometheus` package did not help. {problem}")
    return tools


def promtool(tools: PrometheusTools, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tools.promtool, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_config_and_the_rule_files_it_loads(prometheus_tools):
    done = promtool(prometheus_tools, "check", "config", str(CONFIG))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "SUCCESS: 1 rule files found" in output, output


def test_promtool_accepts_the_alert_rules(prometheus_tools):
    done = promtool(prometheus_tools, "check", "rules", str(ALERTS))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"SUCCESS: {len(alert_names())} rules found" in output, output


def test_the_alert_unit_tests_pass(prometheus_tools):
    assert RULE_TESTS
    done = promtool(prometheus_tools, "test", "rules", *map(str, RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(RULE_TESTS), done.stdout


def test_every_alert_has_a_firing_and_a_quiet_case():
    """So an alert added to alerts.yml without a promtool test fails here, and the test files
    test alerts.yml itself, not a copy. Quiet means: series on which the alert is checked and
    never expected to fire (not merely a check before its ``for:`` has passed)."""
    alerts = set(alert_names())
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        document = _load_yaml(path)
        assert [(path.parent / rule).resolve() for rule in document["rule_files"]] == [ALERTS]
        for case in document["tests"]:
            checks = case.get("alert_rule_test", [])
            checked = {check["alertname"] for check in checks}
            fired = {check["alertname"] for check in checks if check.get("exp_alerts")}
            unknown = checked - alerts
            assert not unknown, f"{path.name}: {sorted(unknown)} are not alerts in alerts.yml"
            firing |= fired
            quiet |= checked - fired
    assert not alerts - firing, f"alerts never shown to fire: {sorted(alerts - firing)}"
    assert not alerts - quiet, f"alerts never shown to stay quiet: {sorted(alerts - quiet)}"


# --- the dashboard's queries ------------------------------------------------------------------


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``([(panel and refId, PromQL)], [(metric, label)] of the label_values variables)``, the
    template variables substituted as Grafana does with "All" selected."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = dashboard.get("templating", {}).get("list", [])
    values = {
        # Grafana's defaults for a 15 s scrape interval; $__range: a 10-minute view.
        "__rate_interval": "1m",
        "__interval": "15s",
        "__range": "10m",
    }
    label_values = []
    for variable in variables:
        if variable.get("type") != "query":
            continue
        assert variable.get("includeAll"), variable["name"]
        assert variable.get("allValue"), variable["name"]
        values[variable["name"]] = variable["allValue"]
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", query)
        assert match, f"variable {variable['name']}: only label_values(...) is supported here"
        label_values.append((match.group(1), match.group(2)))

    def substitute(expr: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            assert name in values, f"unknown template variable ${name} in {expr!r}"
            return values[name]

        return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", value, expr)

    queries = [
        (f"{panel['title']} [{target.get('refId', '?')}]", substitute(target["expr"]))
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    return queries, label_values


def test_dashboard_queries_substitute_every_variable():
    queries, label_values = dashboard_queries()
    assert len(queries) >= 20
    assert label_values
    for _, expr in queries:
        assert "$" not in expr, expr


# --- a live serve and a live Prometheus -------------------------------------------------------


@dataclass
class PrometheusProcess:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx.get(f"{self.base}{path}", params=params, timeout=10)
        body = answer.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] in {"vector", "scalar"}, (expr, data)
        return data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def start_prometheus(
    prometheus_tools: PrometheusTools, tmp_path: Path
) -> Iterator[Callable[[str], PrometheusProcess]]:
    """``start(target)``: prometheus on 127.0.0.1 scraping ``target`` (host:port) every second
    with the deploy config's job and alerts.yml; stopped at the end."""
    started: list[PrometheusProcess] = []

    def start(target: str) -> PrometheusProcess:
        directory = tmp_path / "prometheus"
        directory.mkdir()
        config = _load_yaml(CONFIG)
        config["global"] = {
            **config.get("global", {}),
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        }
        config["rule_files"] = [str(ALERTS)]
        (scrape,) = config["scrape_configs"]
        scrape["static_configs"] = [{"targets": [target]}]
        config_path = directory / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        port = free_port()
        log_path = directory / "prometheus.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [
                    prometheus_tools.prometheus,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                cwd=directory,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        running = PrometheusProcess(f"http://127.0.0.1:{port}", process, log_path)
        started.append(running)
        ready = wait_for(
            lambda: (
                process.poll() is None and httpx.get(f"{running.base}/-/ready").status_code == 200
            ),
            seconds=60,
        )
        assert ready, "prometheus did not become ready:\n" + running.log_tail()
        return running

    try:
        yield start
    finally:
        for running in started:
            if running.process.poll() is None:
                running.process.send_signal(signal.SIGTERM)
                try:
                    running.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    running.process.kill()
                    running.process.wait()


def ozon_posting(number: str, quantity: int) -> dict[str, Any]:
    return {
        "message_type": "TYPE_NEW_POSTING",
        "posting_number": number,
        "products": [{"sku": 555, "quantity": quantity}],
        "in_process_at": "2026-11-22T10:00:00Z",
        "seller_id": 15,
    }


def _has_number(series: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(s["value"][1])) for s in series)


@pytest.mark.integration
@pytest.mark.slow
def test_dashboard_and_alerts_against_a_live_prometheus(start_engine, start_prometheus):
    engine = start_engine()
    base = engine.base
    prometheus = start_prometheus(base.removeprefix("http://"))
    queries, label_values = dashboard_queries()
    alerts = {
        rule["alert"]: rule["expr"]
        for group in _load_yaml(ALERTS)["groups"]
        for rule in group["rules"]
    }

    # A first scrape with the oversold counter at 0, then an oversell: Oversold must fire.
    assert wait_for(
        lambda: prometheus.query('inventory_oversold_total{job="inventory-engine"} == 0'),
        seconds=60,
    ), "Prometheus never scraped serve:\n" + prometheus.log_tail()
    assert httpx.put(f"{base}/v1/stock/MUG", json={"on_hand": 1}, headers=AUTH).is_success
    answer = httpx.post(f"{base}/webhooks/ozon", json=ozon_posting("OVER-1", 3))
    assert answer.json() == {"result": True}
    # Applied by an events worker; the stock count comes after it, or there is no oversell.
    assert wait_for(lambda: prometheus.query("inventory_oversold_total > 0"), seconds=60), (
        "the oversell never showed in Prometheus"
    )
    assert httpx.put(f"{base}/v1/stock/MUG", json={"on_hand": 100_000}, headers=AUTH).is_success

    step = 0

    def traffic() -> None:
        """Orders from a marketplace and the storefront and a stock count: events, pushes
        to every channel, propagation and throttle samples, all within any rate window."""
        nonlocal step
        step += 1
        body = {"reservation_id": f"cart-{step}", "lines": [{"sku": "MUG", "quantity": 1}]}
        with httpx.Client(base_url=base, headers=AUTH, timeout=10) as client:
            client.post("/webhooks/ozon", json=ozon_posting(f"P-{step}", 1))
            client.post("/v1/reservations", json=body)
            client.put("/v1/stock/MUG", json={"on_hand": 100_000 + step})

    def problems() -> list[str]:
        traffic()
        found = []
        for what, expr in queries:
            series = prometheus.query(expr)
            if not series:
                found.append(f"no series: {what}: {expr}")
            elif not _has_number(series):
                found.append(f"only NaN: {what}: {expr} -> {series}")
        for metric, label in label_values:
            if not prometheus.get(f"/api/v1/label/{label}/values", **{"match[]": metric}):
                found.append(f"no values for the variable query label_values({metric}, {label})")
        for expr in alerts.values():
            prometheus.query(expr)  # asserts that it evaluates without error
        rules = [
            rule for group in prometheus.get("/api/v1/rules")["groups"] for rule in group["rules"]
        ]
        if sorted(rule["name"] for rule in rules) != sorted(alerts):
            found.append(f"loaded rules {sorted(rule['name'] for rule in rules)}")
        found += [
            f"rule {rule['name']}: health {rule['health']} {rule.get('lastError', '')}"
            for rule in rules
            if rule["health"] != "ok"
        ]
        firing = {
            alert["labels"]["alertname"]
            for alert in prometheus.get("/api/v1/alerts")["alerts"]
            if alert["state"] == "firing"
        }
        if "Oversold" not in firing:
            found.append(f"Oversold does not fire (firing: {sorted(firing)})")
        return found

    last: list[str] = []

    def settled() -> bool:
        last[:] = problems()
        return not last

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not settled():
        time.sleep(0.5)
    assert not last, "\n".join(last)

    # Healthy apart from the oversell: no other alert fires. (Pending ones are not checked: a
    # scrape slower than the 1 s timeout on a busy machine briefly makes EngineDown pending.)
    firing = {
        alert["labels"]["alertname"]
        for alert in prometheus.get("/api/v1/alerts")["alerts"]
        if alert["state"] == "firing"
    }
    assert firing == {"Oversold"}, firing
