"""The shipped Prometheus config, alert rules and dashboard against real servers.

A real ``gradpool serve`` trains a job while a real Prometheus (Debian's
package) scrapes it with the configuration in deploy/, then every PromQL
expression of the dashboard and the alert rules is run against it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from service.requests import request_from_settings
from tests.conftest import require_tool

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "gradpool.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
READY_TIMEOUT_SECONDS = 60
METRIC_NAME = re.compile(r"\bgradpool_[a-z_]+\b")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    ]


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def local_config(tmp_path: Path, metrics_port: int) -> Path:
    """The shipped config, aimed at the local server and scraping every second."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(ALERTS)]
    scrape = config["scrape_configs"][0]
    scrape["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def prometheus_with_data(ray_address, gradpool_command, tmp_path_factory):
    """Prometheus scraping a server that trained one job; yields its URL."""
    from tests.service.server_process import ServerProcess

    prometheus = require_tool("prometheus")
    tmp_path = tmp_path_factory.mktemp("prometheus")
    metrics_port = free_port()
    server = ServerProcess(
        gradpool_command,
        tmp_path_factory.mktemp("scraped-server"),
        ray_address,
        "--metrics-port",
        str(metrics_port),
        "--checkpoint-interval",
        "20",
    )
    web_port = free_port()
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={local_config(tmp_path, metrics_port)}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{web_port}"
    try:
        wait_until(lambda: ready(url), "Prometheus to be ready")
        settings = {"dataset": "digits", "epochs": 10, "batch_size": 16}
        with server.client() as client:
            job = client.submit(request_from_settings(settings, upload=None)).job
            for _ in client.watch(job.job_id):
                pass
        # Enough scrapes of the finished job for rate() over a minute.
        wait_until(
            lambda: (
                query_values(url, "count_over_time(gradpool_steps_total[1m])")
                and query_values(url, "count_over_time(gradpool_steps_total[1m])")[0]
                >= 5
            ),
            "five scrapes of the job",
        )
        yield {"url": url, "metrics_port": metrics_port, "job": job.job_id}
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        server.terminate()


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def run_query(url: str, expression: str) -> dict:
    query = urllib.parse.urlencode({"query": expression.replace("$job", ".*")})
    return http_json(f"{url}/api/v1/query?{query}")


def query_values(url: str, expression: str) -> list[float]:
    reply = run_query(url, expression)
    return [float(item["value"][1]) for item in reply["data"]["result"]]


def test_promtool_accepts_the_shipped_config_and_rules(tmp_path):
    promtool = require_tool("promtool")
    config = tmp_path / "prometheus.yml"
    config.write_text(SCRAPE_CONFIG.read_text())
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text())
    for arguments in (
        ["check", "config", str(config)],
        ["check", "rules", str(ALERTS)],
    ):
        checked = subprocess.run(
            [promtool, *arguments], capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("expression", dashboard_expressions() + alert_expressions())
def test_every_shipped_expression_runs_on_real_prometheus(
    prometheus_with_data, expression
):
    reply = run_query(prometheus_with_data["url"], expression)
    assert reply["status"] == "success", reply


@pytest.mark.parametrize(
    "expression",
    [
        expression
        for expression in dashboard_expressions()
        if not any(
            word in expression
            for word in (
                'code!="OK"',
                "restarts",
                "watch_streams",
                "rate(gradpool_samples",
            )
        )
    ],
)
def test_dashboard_panels_show_data_of_the_trained_job(
    prometheus_with_data, expression
):
    # Errors, restarts and open streams are rightly empty or zero here;
    # throughput is zero once the job has ended. Everything else has data.
    assert query_values(prometheus_with_data["url"], expression), expression


def test_alert_rules_evaluate_without_errors(prometheus_with_data):
    url = prometheus_with_data["url"]
    wait_until(
        lambda: all(
            rule.get("lastEvaluation", "").startswith("2")
            and not rule["lastEvaluation"].startswith("0001")
            for group in http_json(f"{url}/api/v1/rules")["data"]["groups"]
            for rule in group["rules"]
        ),
        "every rule to be evaluated",
    )
    groups = http_json(f"{url}/api/v1/rules")["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(alert_expressions())
    assert all(rule["health"] == "ok" for rule in rules), rules


def test_scrape_target_is_up(prometheus_with_data):
    values = query_values(prometheus_with_data["url"], 'up{job="gradpool"}')
    assert values == [1.0]


def test_dashboard_and_manifests_reference_only_served_metrics(prometheus_with_data):
    url = f"http://127.0.0.1:{prometheus_with_data['metrics_port']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        served = set(METRIC_NAME.findall(reply.read().decode()))
    shipped = [DASHBOARD, ALERTS, *DEPLOY.glob("**/*.yaml"), *DEPLOY.glob("**/*.yml")]
    referenced = {
        name for path in shipped for name in METRIC_NAME.findall(path.read_text())
    }
    assert referenced, "the dashboard names no metric"
    assert referenced <= served, sorted(referenced - served)


def test_dashboard_has_a_job_selector_used_by_its_job_panels():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "job_id" in variables["job"]["definition"]
    job_panels = [e for e in dashboard_expressions() if "job_id" in e]
    assert job_panels and all('job_id=~"$job"' in e for e in job_panels)


def test_job_selector_offers_the_trained_job_id(prometheus_with_data):
    # The selector's label_values(..., job_id) as Prometheus answers it; the
    # job id must survive the scrape under its own label, not as "job".
    url = prometheus_with_data["url"]
    reply = http_json(f"{url}/api/v1/label/job_id/values")
    assert prometheus_with_data["job"] in reply["data"]


def test_job_panels_select_one_job(prometheus_with_data):
    job = prometheus_with_data["job"]
    expression = f'gradpool_job_step{{job_id=~"{job}"}}'
    reply = run_query(prometheus_with_data["url"], expression)
    series = reply["data"]["result"]
    assert [item["metric"]["job_id"] for item in series] == [job]
    assert series[0]["metric"]["job"] == "gradpool"
