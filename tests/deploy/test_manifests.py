"""The deploy/ files parse and point at things that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
YAML_FILES = sorted([*DEPLOY.glob("**/*.yaml"), *DEPLOY.glob("**/*.yml")])


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents and all(isinstance(d, dict) for d in documents)


@pytest.mark.parametrize(
    "path",
    sorted((DEPLOY / "kubernetes").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_kubernetes_manifests_name_their_kind_and_version(path):
    for document in yaml.safe_load_all(path.read_text()):
        assert document["apiVersion"] and document["kind"]
        assert document["metadata"]["name"]


def test_dashboard_json_parses_and_every_panel_has_a_query():
    dashboard = json.loads((DEPLOY / "grafana/dashboards/gradpool.json").read_text())
    assert dashboard["uid"] == "gradpool"
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["description"], panel["title"]


def test_compose_mounts_only_files_that_exist():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), volume
        build = service.get("build")
        if build:
            context = DEPLOY / build["context"]
            assert (context / build["dockerfile"]).is_file()


def test_dockerfile_copies_only_paths_of_the_repository():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copies = re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.MULTILINE)
    sources = [source for line in copies for source in line.split()]
    assert sources
    assert all((ROOT / source).exists() for source in sources), sources


def test_grafana_provisioning_reads_the_folder_compose_mounts():
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/gradpool.yml").read_text()
    )
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = [v.split(":")[1] for v in compose["services"]["grafana"]["volumes"]]
    assert provider["providers"][0]["options"]["path"] in mounts


def test_prometheus_rule_files_are_mounted_beside_the_config():
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = [v.split(":")[1] for v in compose["services"]["prometheus"]["volumes"]]
    for rule_file in config["rule_files"]:
        assert f"/etc/prometheus/{rule_file}" in mounts
