"""deploy/: the compose file, its nginx, Prometheus and Grafana files agree
with the code and with each other. (No Docker engine runs where the tests
run, so the stack itself is not started here.)"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from signvideo.config import SETTINGS
from signvideo.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERVERS = ("signvideo-1", "signvideo-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


SAMPLES_OF = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


def _exported_sample_names() -> set[str]:
    """Every sample name a server process's /metrics can carry (a labelled
    metric has no samples until a label is used, but has its TYPE line)."""
    text = generate_latest(Metrics().registry).decode()
    return {
        # A counter's TYPE line may name it with its _total or without.
        (name.removesuffix("_total") if kind == "counter" else name) + suffix
        for name, kind in re.findall(r"^# TYPE (\w+) (\w+)$", text, re.MULTILINE)
        for suffix in SAMPLES_OF[kind]
    }


def test_the_dashboard_reads_only_metrics_the_server_exports() -> None:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/signvideo.json").read_text())
    exported = _exported_sample_names()
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    )["datasources"][0]
    read: set[str] = set()
    for panel in dashboard["panels"]:
        # Said in words, for whoever reads the dashboard.
        assert panel["title"] and panel["description"], panel
        assert panel["datasource"]["uid"] == datasource["uid"]
        for target in panel["targets"]:
            names = set(re.findall(r"\bsignvideo_\w+", target["expr"]))
            assert names, target
            read |= names
    assert read <= exported, read - exported
    # Each of the service's own metrics has a panel.
    families = {name.removesuffix("_bucket") for name in read}
    for wanted in ("signvideo_join_seconds", "signvideo_join_database_seconds"):
        assert wanted in families


def test_the_server_processes_are_set_up_as_the_code_reads_settings(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    known = {setting.env: setting for setting in SETTINGS}
    nginx_address = services["nginx"]["networks"]["signvideo"]["ipv4_address"]
    pool = compose["networks"]["signvideo"]["ipam"]["config"][0]
    nginx_ip = ipaddress.ip_address(nginx_address)
    # In the network, and outside the range Docker hands out to others.
    assert nginx_ip in ipaddress.ip_network(pool["subnet"])
    assert nginx_ip not in ipaddress.ip_network(pool["ip_range"])
    assert ipaddress.ip_network(pool["ip_range"]).subnet_of(ipaddress.ip_network(pool["subnet"]))
    for name in SERVERS:
        server = services[name]
        assert (DEPLOY.parent / server["build"]["context"].removeprefix("..").lstrip("/")).is_dir()
        assert (DEPLOY / ".." / server["build"]["dockerfile"]).is_file()
        environment = server["environment"]
        assert environment["DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in environment["DATABASE_URL"]
        for key, value in environment.items():
            if key.startswith("SIGNVIDEO_"):
                assert key in known, f"{name} sets {key}, which signvideo does not read"
                known[key].parse(str(value))  # a value the server would refuse fails here
        # nginx's X-Forwarded-For is believed: callers' own addresses count
        # for the join limits.
        assert nginx_address in environment["SIGNVIDEO_TRUSTED_PROXIES"].split(",")
        assert server["command"][0] == "signvideo"
        assert server["command"][1] in ("serve", "demo")
    # The image listens where nginx and Prometheus look for it.
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "SIGNVIDEO_HOST=0.0.0.0 SIGNVIDEO_PORT=8080" in dockerfile
    assert "/healthz" in dockerfile


def test_nginx_and_prometheus_look_for_the_server_processes_that_exist(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    upstream = re.findall(
        r"^\s*server\s+([\w.-]+):(\d+);", (DEPLOY / "compose-nginx.conf").read_text(), re.MULTILINE
    )
    assert sorted(upstream) == [(name, "8080") for name in SERVERS]
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = [
        target
        for job in prometheus["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    ]
    assert sorted(targets) == [f"{name}:8080" for name in SERVERS]
    for name in SERVERS:
        assert name in services
    # Every file the stack mounts from here is here.
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), volume
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/signvideo.yaml").read_text()
    )
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{dashboards_path}:ro" in services["grafana"]["volumes"]
