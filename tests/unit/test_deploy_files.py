"""The deploy files agree with each other and with cxloop's settings.

No Docker engine or Kubernetes API is needed: the YAML is parsed and its cross-references
(env var names, service names, ports, selectors, Secret keys) are checked by hand; where
kubectl is installed, `kubectl kustomize` renders deploy/k8s as well.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from agents.cli.main import cli
from streams.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
ENV_PREFIX = "CXLOOP_"
SECRET_ENV = {"CXLOOP_DATABASE_URL", "CXLOOP_STAFF_TOKEN", "CXLOOP_SMTP_PASSWORD"}
# The only kinds we ship, with the API group/version the current Kubernetes serves them in.
K8S_API_VERSIONS = {
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
}
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# In a container the web server must bind every interface: probes and port mappings come
# from outside its network namespace.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
# What migrates the database to the image's schema before a worker starts.
MIGRATE_COMMAND = ["cxloop", "db", "upgrade"]


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})


def load_docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
    return docs


def env_to_field(name: str) -> str:
    assert name.startswith(ENV_PREFIX), f"{name} lacks the {ENV_PREFIX} prefix"
    return name.removeprefix(ENV_PREFIX).lower()


def assert_settings_fields(names: set[str], where: str) -> None:
    unknown = sorted(n for n in names if env_to_field(n) not in Settings.model_fields)
    assert not unknown, f"{where}: not fields of streams.settings.Settings: {unknown}"


def settings_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings exactly as a worker given only `env` would build them."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# ---------------------------------------------------------------------------- every YAML file


def test_deploy_has_the_expected_yaml_files() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in yaml_files()}
    assert "compose.yaml" in names
    assert {
        "k8s/deployment.yaml",
        "k8s/service.yaml",
        "k8s/configmap.yaml",
        "k8s/secret.example.yaml",
        "k8s/poddisruptionbudget.yaml",
    } <= names


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_parses_into_mappings(path: Path) -> None:
    assert load_docs(path), f"{path} holds no YAML document"


# ---------------------------------------------------------------------------- compose


def compose() -> dict[str, Any]:
    (doc,) = load_docs(COMPOSE)
    return doc


def service_env(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment, from either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {name: value for name, _, value in (item.partition("=") for item in env)}
    return {k: "" if v is None else str(v) for k, v in env.items()}


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return test
    assert test[0] in {"CMD", "CMD-SHELL"}, f"healthcheck test must start with CMD: {test}"
    return " ".join(test[1:])


def test_compose_has_the_services() -> None:
    assert {"kafka", "postgres", "mailpit", "migrate", "cxloop"} <= set(compose()["services"])


def one_shot(service: dict[str, Any]) -> bool:
    """A service that runs to completion (a migration), not one that keeps running."""
    return str(service.get("restart", "no")) == "no"


def test_kafka_runs_in_kraft_mode() -> None:
    services = compose()["services"]
    kafka = services["kafka"]
    env = service_env(kafka)
    assert kafka["image"] == "apache/kafka:3.9.0"
    roles = {r.strip() for r in env["KAFKA_PROCESS_ROLES"].split(",")}
    assert roles == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert any(v.startswith(f"{node_id}@") for v in voters), "this node must be a voter"
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert f"{controller}://" in env["KAFKA_LISTENERS"]
    assert controller in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert "CLUSTER_ID" in env
    assert not any("ZOOKEEPER" in name for name in env)
    assert not any("zookeeper" in str(s.get("image", "")) for s in services.values())


def test_compose_services_have_healthchecks() -> None:
    for name, service in compose()["services"].items():
        if one_shot(service):
            assert "healthcheck" not in service, f"{name} runs once: its exit code is its health"
            continue
        assert healthcheck_command(service).strip(), f"{name} has an empty healthcheck"


def test_cxloop_waits_for_healthy_dependencies_and_the_migration() -> None:
    services = compose()["services"]
    depends_on = services["cxloop"]["depends_on"]
    assert set(depends_on) == {"kafka", "postgres", "mailpit", "migrate"}
    for dependency, spec in depends_on.items():
        if dependency == "migrate":
            assert spec["condition"] == "service_completed_successfully"
            assert one_shot(services[dependency])
            continue
        assert spec["condition"] == "service_healthy", dependency
        assert "healthcheck" in services[dependency], dependency


def test_compose_migrate_upgrades_the_workers_database_once_postgres_is_healthy() -> None:
    services = compose()["services"]
    migrate, worker = services["migrate"], services["cxloop"]
    assert migrate["command"] == MIGRATE_COMMAND
    # The worker's image, built the same way: the migrations are the ones that image expects.
    assert migrate["image"] == worker["image"]
    assert migrate["build"] == worker["build"]
    migrate_env = service_env(migrate)
    assert all(n.startswith(ENV_PREFIX) for n in migrate_env), sorted(migrate_env)
    assert_settings_fields(set(migrate_env), "compose migrate")
    assert migrate_env["CXLOOP_DATABASE_URL"] == cxloop_compose_env()["CXLOOP_DATABASE_URL"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert one_shot(migrate)
    assert "ports" not in migrate


def test_the_migrate_command_is_a_cxloop_command() -> None:
    assert MIGRATE_COMMAND[0] == "cxloop"
    result = CliRunner().invoke(cli, [*MIGRATE_COMMAND[1:], "--help"])
    assert result.exit_code == 0, result.output
    assert "Migrate the database" in result.output


def cxloop_compose_env() -> dict[str, str]:
    return service_env(compose()["services"]["cxloop"])


def test_cxloop_compose_env_names_are_settings_fields() -> None:
    env = cxloop_compose_env()
    assert_settings_fields({n for n in env if n.startswith(ENV_PREFIX)}, "compose cxloop")
    # An unprefixed or misspelt name would be silently ignored (extra="ignore").
    assert all(n.startswith(ENV_PREFIX) for n in env), sorted(env)


def test_cxloop_compose_env_values(monkeypatch: pytest.MonkeyPatch) -> None:
    env = cxloop_compose_env()
    assert {
        "CXLOOP_KAFKA_BOOTSTRAP": "kafka:9092",
        "CXLOOP_DATABASE_URL": "postgresql+psycopg://cxloop:cxloop@postgres:5432/cxloop",
        "CXLOOP_SMTP_HOST": "mailpit",
        "CXLOOP_SMTP_PORT": "1025",
        "CXLOOP_SMTP_STARTTLS": "false",
        "CXLOOP_PUBLIC_URL": "http://localhost:6066",
        "CXLOOP_WEB_HOST": ALL_INTERFACES,
        "CXLOOP_WEB_PORT": "6066",
        "CXLOOP_STAFF_TOKEN": "change-me",
    }.items() <= env.items()
    settings = settings_from_env(monkeypatch, env)
    assert settings.smtp_starttls is False
    assert settings.smtp_port == 1025
    assert settings.web_port == 6066
    assert settings.staff_token.get_secret_value() == "change-me"


def test_cxloop_compose_env_points_at_the_compose_services() -> None:
    services = compose()["services"]
    env = cxloop_compose_env()

    kafka_env = service_env(services["kafka"])
    for server in env["CXLOOP_KAFKA_BOOTSTRAP"].split(","):
        host, _, port = server.partition(":")
        assert host in services
        assert f"//{host}:{port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"], server

    db = make_url(env["CXLOOP_DATABASE_URL"])
    pg_env = service_env(services["postgres"])
    assert db.host in services
    assert (db.username, db.password, db.database) == (
        pg_env["POSTGRES_USER"],
        pg_env["POSTGRES_PASSWORD"],
        pg_env["POSTGRES_DB"],
    )
    assert db.port == 5432

    assert env["CXLOOP_SMTP_HOST"] in services
    assert "image" in services[env["CXLOOP_SMTP_HOST"]]
    smtp_bind = service_env(services["mailpit"]).get("MP_SMTP_BIND_ADDR", "0.0.0.0:1025")
    assert smtp_bind.rsplit(":", 1)[1] == env["CXLOOP_SMTP_PORT"]


def test_cxloop_compose_healthcheck_and_port_use_the_web_port() -> None:
    cxloop = compose()["services"]["cxloop"]
    port = cxloop_compose_env()["CXLOOP_WEB_PORT"]
    assert f":{port}/health" in healthcheck_command(cxloop)
    assert any(str(p).endswith(f":{port}") for p in cxloop["ports"])


# ---------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    build = compose()["services"]["cxloop"]["build"]
    path = (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve()
    assert path == DEPLOY / "Dockerfile"
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            yield instruction.upper(), args.strip()


def test_dockerfile_builds_the_worker_image() -> None:
    instructions = list(dockerfile_instructions())
    froms = [args for ins, args in instructions if ins == "FROM"]
    assert froms == ["python:3.11-slim"]
    assert any(ins == "RUN" and "pip install ." in args for ins, args in instructions)
    (cmd,) = [args for ins, args in instructions if ins == "CMD"]
    assert json.loads(cmd) == ["cxloop", "worker"]
    exposed = {p for ins, args in instructions if ins == "EXPOSE" for p in args.split()}
    assert cxloop_compose_env()["CXLOOP_WEB_PORT"] in exposed
    assert any(ins == "USER" and not args.startswith(("root", "0")) for ins, args in instructions)


def test_dockerfile_env_names_are_settings_fields() -> None:
    names = {
        pair.split("=", 1)[0]
        for ins, args in dockerfile_instructions()
        if ins == "ENV"
        for pair in shlex.split(args)
    }
    assert_settings_fields({n for n in names if n.startswith(ENV_PREFIX)}, "deploy/Dockerfile")


# ---------------------------------------------------------------------------- Kubernetes


def k8s_objects() -> list[dict[str, Any]]:
    objects = [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        for doc in load_docs(path)
        if doc.get("kind") != "Kustomization"
    ]
    assert objects, "deploy/k8s holds no manifest"
    return objects


def k8s_one(kind: str) -> dict[str, Any]:
    (obj,) = [o for o in k8s_objects() if o["kind"] == kind]
    return obj


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = k8s_one("Deployment")["spec"]["template"]["spec"]
    return spec


def worker_container() -> dict[str, Any]:
    (container,) = pod_spec()["containers"]
    return container


def migrate_container() -> dict[str, Any]:
    (container,) = pod_spec()["initContainers"]
    return container


def secret_refs(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Env var name -> its secretKeyRef, for the container's variables taken from a Secret."""
    return {
        var["name"]: var["valueFrom"]["secretKeyRef"]
        for var in container.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    }


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port (number or name) as a port the container declares."""
    declared = {p["containerPort"]: p for p in container.get("ports", [])}
    if isinstance(port, int):
        assert port in declared, f"port {port} is not a containerPort of {container['name']}"
        return port
    by_name = {p["name"]: p["containerPort"] for p in declared.values() if "name" in p}
    assert port in by_name, f"port name {port!r} is not declared by {container['name']}"
    return by_name[port]


def configmap_data() -> dict[str, Any]:
    data: dict[str, Any] = k8s_one("ConfigMap")["data"]
    return data


def secret_data() -> dict[str, Any]:
    secret = k8s_one("Secret")
    data: dict[str, Any] = {**secret.get("data", {}), **secret.get("stringData", {})}
    return data


def test_k8s_objects_have_identity() -> None:
    for obj in k8s_objects():
        kind = obj.get("kind")
        assert kind in K8S_API_VERSIONS, f"unexpected kind {kind!r}"
        assert obj.get("apiVersion") == K8S_API_VERSIONS[kind], kind
        name = obj.get("metadata", {}).get("name", "")
        assert DNS1123_SUBDOMAIN.match(name) and len(name) <= 253, f"bad {kind} name {name!r}"
    kinds = sorted(o["kind"] for o in k8s_objects())
    assert kinds == sorted(K8S_API_VERSIONS), "exactly one object of each kind"


def test_kustomization_applies_everything_but_the_secret_example() -> None:
    (kustomization,) = load_docs(K8S / "kustomization.yaml")
    resources = kustomization["resources"]
    assert all((K8S / r).is_file() for r in resources), resources
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(resources) == manifests - {"secret.example.yaml"}


def test_deployment_runs_two_worker_replicas() -> None:
    deployment = k8s_one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    container = worker_container()
    assert DNS1123_LABEL.match(container["name"])
    assert container.get("command", ["cxloop", "worker"]) == ["cxloop", "worker"]


def test_deployment_probes_hit_health_on_a_declared_port() -> None:
    container = worker_container()
    web_port = int(configmap_data()["CXLOOP_WEB_PORT"])
    assert configmap_data()["CXLOOP_WEB_HOST"] == ALL_INTERFACES, "probes come from outside the pod"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe == "startupProbe" and probe not in container:
            continue
        http_get = container[probe]["httpGet"]
        assert http_get["path"] == "/health", probe
        assert resolve_port(container, http_get["port"]) == web_port == 6066, probe


def parse_quantity(value: str | float) -> float:
    """A Kubernetes resource quantity (250m, 1, 512Mi, 1Gi) as a plain number."""
    suffixes = {
        "m": 1e-3,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
    }
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", str(value))
    assert match and match.group(2) in {"", *suffixes}, f"bad quantity {value!r}"
    return float(match.group(1)) * suffixes.get(match.group(2), 1)


def test_deployment_sets_resources() -> None:
    resources = worker_container()["resources"]
    for resource in ("cpu", "memory"):
        request = parse_quantity(resources["requests"][resource])
        limit = parse_quantity(resources["limits"][resource])
        assert 0 < request <= limit, resource


def test_deployment_env_comes_from_the_configmap_and_secret() -> None:
    container = worker_container()
    config_refs = [s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s]
    assert config_refs == [k8s_one("ConfigMap")["metadata"]["name"]]

    secret_name = k8s_one("Secret")["metadata"]["name"]
    from_secret = {}
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == secret_name, var["name"]
            assert ref["key"] in secret_data(), var["name"]
            from_secret[var["name"]] = ref["key"]
    assert set(from_secret) == SECRET_ENV
    assert not SECRET_ENV & set(configmap_data()), "secrets must not be in the ConfigMap"


def test_k8s_env_names_are_settings_fields() -> None:
    names = set(configmap_data()) | set(secret_data())
    for container in (worker_container(), migrate_container()):
        names |= {v["name"] for v in container["env"]}
    assert all(ENV_NAME.match(n) for n in names), sorted(names)
    assert all(n.startswith(ENV_PREFIX) for n in names), sorted(names)
    assert_settings_fields(names, "deploy/k8s")


def test_k8s_settings_are_production_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config = configmap_data()
    # Kubernetes rejects a ConfigMap whose values are YAML numbers or booleans.
    assert all(isinstance(v, str) for v in config.values()), config
    settings = settings_from_env(monkeypatch, {**config, **secret_data()})
    assert settings.topic_replication == 3
    assert settings.topic_partitions >= k8s_one("Deployment")["spec"]["replicas"]
    assert settings.smtp_starttls is True
    assert settings.web_host == ALL_INTERFACES
    assert make_url(settings.database_url).get_backend_name() == "postgresql"
    assert settings.log_format == "json"


def test_service_routes_to_the_worker_http_port() -> None:
    service = k8s_one("Service")
    pod_labels = k8s_one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert set(ports) == {"http", "complaint-smtp"}
    config = configmap_data()
    for name, setting in [
        ("http", "CXLOOP_WEB_PORT"),
        ("complaint-smtp", "CXLOOP_COMPLAINT_SMTP_PORT"),
    ]:
        port = ports[name]
        target = resolve_port(worker_container(), port.get("targetPort", port["port"]))
        assert target == int(config[setting])


def test_pod_disruption_budget_keeps_a_worker_and_allows_drains() -> None:
    pdb = k8s_one("PodDisruptionBudget")
    deployment = k8s_one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    min_available = pdb["spec"]["minAvailable"]
    assert isinstance(min_available, int)
    assert 1 <= min_available < deployment["spec"]["replicas"]


# ---------------------------------------------------------------------------- migration


def test_deployment_migrates_the_schema_before_the_worker_starts() -> None:
    """An initContainer, so no worker of a pod starts before `cxloop db upgrade` exited 0."""
    migrate, worker = migrate_container(), worker_container()
    assert DNS1123_LABEL.match(migrate["name"]) and migrate["name"] != worker["name"]
    assert migrate["command"] == MIGRATE_COMMAND
    assert "args" not in migrate
    assert migrate["image"] == worker["image"]
    assert migrate.get("imagePullPolicy") == worker.get("imagePullPolicy")
    # A one-shot step: nothing to probe, nothing to serve, never restarted beside the worker.
    for field in ("ports", "readinessProbe", "livenessProbe", "startupProbe", "restartPolicy"):
        assert field not in migrate, field
    # No Job beside it: kustomize has no ordering, and a Job's template is immutable.
    assert "Job" not in {o["kind"] for o in k8s_objects()}


def test_migration_uses_the_workers_config_and_database_secret() -> None:
    migrate, worker = migrate_container(), worker_container()
    assert migrate["envFrom"] == worker["envFrom"]
    refs = secret_refs(migrate)
    assert set(refs) == {"CXLOOP_DATABASE_URL"}, "the migration needs the database, nothing else"
    assert refs["CXLOOP_DATABASE_URL"] == secret_refs(worker)["CXLOOP_DATABASE_URL"]
    assert refs["CXLOOP_DATABASE_URL"]["name"] == k8s_one("Secret")["metadata"]["name"]
    assert refs["CXLOOP_DATABASE_URL"]["key"] in secret_data()


def test_migration_container_is_locked_down_and_bounded() -> None:
    migrate, worker = migrate_container(), worker_container()
    assert migrate["securityContext"] == worker["securityContext"]
    volumes = {v["name"] for v in pod_spec()["volumes"]}
    mounts = migrate.get("volumeMounts", [])
    assert {m["name"] for m in mounts} <= volumes
    # The root filesystem is read-only: a scratch directory where the worker has its own.
    worker_tmp = [m for m in worker["volumeMounts"] if m["name"] == "tmp"]
    assert worker_tmp and worker_tmp[0] in mounts
    resources = migrate["resources"]
    for resource in ("cpu", "memory"):
        request = parse_quantity(resources["requests"][resource])
        limit = parse_quantity(resources["limits"][resource])
        assert 0 < request <= limit, resource


def test_deployment_says_why_an_init_container_and_why_every_pod_may_run_it() -> None:
    text = (K8S / "deployment.yaml").read_text(encoding="utf-8").lower()
    for reason in ("advisory lock", "job", "immutable", "backward compatible"):
        assert reason in text, reason


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_worker_with_its_migration() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    objects = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    assert [c["command"] for c in spec["initContainers"]] == [MIGRATE_COMMAND]
    assert "Secret" not in {o["kind"] for o in objects}
