"""deploy/: what an operator runs, checked without a Docker engine or a cluster.

The compose topology and the Dockerfile are parsed; the Kubernetes manifests are validated with
kubernetes-validate against the versions below; the alert rules and the dashboard may only use
metrics the app exports. promtool and nginx (Debian packages `prometheus` and `nginx`) check the
real files when installed, else those tests skip and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import promql_parser
import pytest
import uvicorn
import websockets
import yaml
from dockerfile_parse import DockerfileParser
from prometheus_client import Counter, Gauge, Histogram
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from capacity import metrics
from capacity.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSIONS = ("1.30.0", "1.34.0")
"""The Kubernetes versions the manifests are validated against (kubernetes-validate's schemas)."""


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def k8s_kind(kind: str) -> list[dict]:
    return [doc for _, doc in k8s_documents() if doc["kind"] == kind]


def exported_metric_names() -> set[str]:
    """Every series name /metrics can carry, as summed over workers (multi-process mode: no `_created`)."""
    names: set[str] = set()
    for collector in vars(metrics).values():
        if isinstance(collector, Counter):
            names.add(f"{collector._name}_total")
        elif isinstance(collector, Histogram):
            names |= {f"{collector._name}_bucket", f"{collector._name}_sum", f"{collector._name}_count"}
        elif isinstance(collector, Gauge):
            names.add(collector._name)
    return names


def metric_families() -> set[str]:
    """The app's metrics by family: `capacity_apply_seconds` for its _bucket/_sum/_count."""
    return {c._name for c in vars(metrics).values() if isinstance(c, Counter | Gauge | Histogram)}


def family_of(series: str) -> str:
    return re.sub(r"_(total|bucket|sum|count)$", "", series)


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def selectors(expr: str) -> set[str]:
    """Metric names the PromQL expression selects (parsed, not pattern-matched)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    found: set[str] = set()

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr!r}"
            found.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def alert_rules() -> list[dict]:
    return [rule for group in load_yaml(DEPLOY / "prometheus" / "alerts.yml")["groups"] for rule in group["rules"]]


def dashboard_panels() -> list[dict]:
    def walk(panels: list[dict]) -> Iterator[dict]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    return list(walk(json.loads((DEPLOY / "grafana" / "dashboards" / "capacity.json").read_text())["panels"]))


def compose() -> dict:
    return load_yaml(DEPLOY / "compose.yaml")


def interpolated_only(value: str) -> bool:
    """A value that holds no literal secret: only ${VAR…} substitutions around non-secret text."""
    return bool(re.fullmatch(r"\$\{[A-Z0-9_]+(:?[?-][^}]*)?\}", value))


SECRET_NAMES = re.compile(r"PASSWORD|SECRET|TOKEN|_URL$|AUTH", re.IGNORECASE)


# --- the image ----------------------------------------------------------------------------------


def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DEPLOY / "Dockerfile"))


def stages() -> list[list[dict]]:
    found: list[list[dict]] = []
    for instruction in dockerfile().structure:
        if instruction["instruction"] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def test_image_is_built_in_a_build_stage_and_runs_from_a_slim_one():
    build, runtime = stages()
    assert re.search(r"\bAS build\b", build[0]["value"], re.IGNORECASE)
    base = dockerfile().parent_images[-1]
    assert base.startswith("python:") and "slim" in base, f"the runtime image should be a slim Python, not {base!r}"
    copies_from_build = [i["value"] for i in runtime if i["instruction"] == "COPY" and "--from=build" in i["value"]]
    assert copies_from_build, "the runtime stage takes the built venv from the build stage"


def test_final_image_has_no_compilers_or_package_installs():
    runtime = stages()[-1]
    runs = " ".join(i["value"] for i in runtime if i["instruction"] == "RUN")
    for tool in ("build-essential", "gcc", "apt-get install", "pip install", "make "):
        assert tool not in runs, f"{tool!r} in the final stage"


def test_image_runs_as_a_numeric_non_root_user():
    users = [i["value"].strip() for i in stages()[-1] if i["instruction"] == "USER"]
    assert users, "the final stage sets a USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, f"USER {users[-1]} must be a numeric non-root uid (Kubernetes runAsNonRoot)"
    uids = {w["spec"]["template"]["spec"]["securityContext"]["runAsUser"] for w in k8s_kind("Deployment") + k8s_kind("Job")}
    assert uids == {int(user)}, "the manifests run the image's user"


def test_image_has_a_healthcheck_on_healthz_and_serves_with_workers():
    instructions = {i["instruction"]: i["value"] for i in stages()[-1]}
    assert "/healthz" in instructions["HEALTHCHECK"]
    assert re.search(r"--interval=\d+s", instructions["HEALTHCHECK"]) and "--timeout=" in instructions["HEALTHCHECK"]
    assert json.loads(instructions["CMD"])[:2] == ["capacity", "serve"]
    assert "EXPOSE" in instructions


def test_dockerfile_lints_clean():
    """The usual hadolint-style rules, for the ones that matter here."""
    parser = dockerfile()
    for instruction in parser.structure:
        name, value = instruction["instruction"], instruction["value"]
        where = f"line {instruction['startline'] + 1}: {name} {value}"
        assert not (name == "ADD" and re.search(r"https?://", value)), f"{where}: download with ADD"
        assert name != "MAINTAINER", where
        if name == "RUN":
            assert "sudo " not in value, where
            assert not re.search(r"curl[^|]*\|\s*(ba)?sh", value), f"{where}: curl | sh"
            if "apt-get install" in value:
                assert "--no-install-recommends" in value and "rm -rf /var/lib/apt/lists" in value, where
                assert "apt-get update" in value, f"{where}: update and install in one layer"
            if "apt-get upgrade" in value or "apt-get dist-upgrade" in value:
                pytest.fail(where)
        if name == "WORKDIR":
            assert value.startswith("/"), f"{where}: absolute WORKDIR"
        if name == "CMD":
            assert value.startswith("["), f"{where}: exec form, so signals reach the server"
    for image in parser.parent_images:
        assert ":" in image and not image.endswith(":latest"), f"pin the base image tag, not {image!r}"


def test_image_copies_every_package_and_the_files_its_build_reads():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = " ".join(i["value"] for i in stages()[0] if i["instruction"] == "COPY")
    packages = {p.rstrip("*").rstrip(".") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    for needed in {*packages, "pyproject.toml", project["project"]["readme"]}:
        assert re.search(rf"(^|\s){re.escape(needed)}(\s|$)", copied), f"the build stage does not COPY {needed}"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for needed in {*packages, "pyproject.toml", project["project"]["readme"]}:
        assert f"!{needed}" in ignore, f"Dockerfile.dockerignore leaves {needed} out of the build context"


def test_image_carries_every_data_file_the_app_reads():
    """The image installs the package (not editable): files outside package-data would be missing."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data: dict[str, list[str]] = project["tool"]["setuptools"]["package-data"]
    git = shutil.which("git")
    tracked = git and subprocess.run(
        [git, "ls-files", "capacity", "regions", "frontend", "feeds"], cwd=ROOT, capture_output=True, text=True
    )
    files = [Path(f) for f in tracked.stdout.split()] if tracked and tracked.returncode == 0 else []
    if not files:
        pytest.skip("git or a git checkout is missing: cannot tell shipped files from local ones")
    missing = []
    for file in files:
        if file.suffix in (".py", ".pyi") or (file.suffix == ".md" and len(file.parts) == 2):
            continue  # code, and the Markdown documentation next to a package (feeds/EDXL-HAVE.md)
        package = file.parent
        while not (ROOT / package / "__init__.py").exists():
            package = package.parent
        relative = file.relative_to(package).as_posix()
        patterns = package_data.get(".".join(package.parts), [])
        if not any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(relative, p.replace("**/", "")) for p in patterns):
            missing.append(str(file))
    assert not missing, f"not in [tool.setuptools.package-data], so not in the image: {missing}"


# --- compose ------------------------------------------------------------------------------------


def test_compose_runs_two_apps_behind_a_proxy_with_redis_postgres_prometheus_grafana():
    services = compose()["services"]
    assert {"app1", "app2", "proxy", "redis", "postgres", "migrate", "prometheus", "grafana"} <= set(services)
    for name in ("app1", "app2"):
        app = services[name]
        assert app["command"] == ["capacity", "serve", "--workers", "2"]
        assert app["build"]["dockerfile"] == "deploy/Dockerfile" and app["image"] == services["migrate"]["image"]
        assert "ports" not in app, "apps are reached only through the proxy"
        assert app["environment"]["REDIS_URL"].startswith("${REDIS_URL")
        assert app["environment"]["DATABASE_URL"].startswith("${DATABASE_URL")
    assert services["migrate"]["command"] == ["capacity", "db", "upgrade"]
    assert services["proxy"]["ports"], "the proxy is the one published port"


def test_compose_starts_apps_after_healthy_stores_and_a_successful_migration():
    services = compose()["services"]
    for name in ("app1", "app2"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == depends["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    assert {services["proxy"]["depends_on"][a]["condition"] for a in ("app1", "app2")} == {"service_healthy"}
    for name in ("app1", "app2", "proxy", "redis", "postgres", "prometheus", "grafana"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "/healthz" in " ".join(services["app1"]["healthcheck"]["test"])


def test_compose_redis_keeps_an_append_only_file_on_a_volume():
    config = compose()
    redis = config["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert "noeviction" in command, "an evicted key would be lost live state"
    mounts = {m.split(":")[0]: m.split(":")[1] for m in redis["volumes"]}
    assert mounts.get("redis-data") == "/data" and "redis-data" in config["volumes"]
    postgres = config["services"]["postgres"]
    assert any(m.startswith("postgres-data:") for m in postgres["volumes"]) and "postgres-data" in config["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_compose_sentinel_profile_watches_redis_with_a_replica_and_three_sentinels_that_agree():
    config = compose()
    services = config["services"]
    sentinels = [n for n in services if n.startswith("sentinel-")]
    assert len(sentinels) == 3 and all(services[n]["profiles"] == ["sentinel"] for n in [*sentinels, "redis-replica"])
    assert "redis" in services and "profiles" not in services["redis"], "the primary runs in every profile"
    replica = " ".join(services["redis-replica"]["command"])
    assert "--replicaof redis 6379" in replica and "--masterauth" in replica and "--appendonly yes" in replica
    for name in sentinels:
        script = " ".join(services[name]["command"])
        assert "sentinel monitor capacity redis 6379 2" in script, "quorum 2 of 3"
        assert "sentinel auth-pass capacity $$REDIS_PASSWORD" in script and "exec redis-sentinel" in script
        assert "ckquorum" in " ".join(services[name]["healthcheck"]["test"])
    assert "redis-replica-data" in config["volumes"]
    assert "redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/capacity" in (DEPLOY / "README.md").read_text()


def test_compose_holds_no_secret_inline():
    config = compose()
    for name, service in config["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: use a mapping for environment"
        for key, value in environment.items():
            if SECRET_NAMES.search(key):
                assert interpolated_only(str(value)), f"{name}.{key} must come from deploy/.env as ${{VAR:?…}}, not {value!r}"
        assert "--requirepass" not in " ".join(map(str, service.get("command", []))) or "$$REDIS_PASSWORD" in " ".join(
            service["command"]
        ), f"{name}: the password comes from the environment"
    text = (DEPLOY / "compose.yaml").read_text()
    assert not re.search(r"://[^/\s:@]*:[^$@\s/]+@", text), "a URL with a literal password in compose.yaml"
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()
    example = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines() if line and not line.startswith("#"))
    variables = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    assert variables <= set(example), f"deploy/.env.example lacks {variables - set(example)}"


def test_compose_apps_run_read_only_without_privileges():
    services = compose()["services"]
    for name in ("app1", "app2", "migrate"):
        service = services[name]
        assert service["read_only"] is True and "/app/var" in service["tmpfs"]
        assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"]


def test_compose_mounts_the_proxy_prometheus_and_grafana_files_that_exist():
    services = compose()["services"]
    for name in ("proxy", "prometheus", "grafana"):
        for mount in services[name]["volumes"]:
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is not in deploy/"
    grafana_env = services["grafana"]["environment"]
    home = grafana_env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "capacity.yml")["providers"][0]
    assert home.startswith(provider["options"]["path"]) and home.endswith("capacity.json")


# --- the proxy ----------------------------------------------------------------------------------


def nginx_locations() -> dict[str, str]:
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    return {m["path"]: m["body"] for m in re.finditer(r"location\s+(?:=\s*)?(?P<path>\S+)\s*\{(?P<body>[^}]*)\}", text)}


def test_proxy_upgrades_websockets_and_keeps_them_open():
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    ws = nginx_locations()["/ws/"]
    assert "proxy_http_version 1.1" in text
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", ws)
    assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade;", ws)
    assert re.search(r"map\s+\$http_upgrade\s+\$connection_upgrade", text)
    for timeout in ("proxy_read_timeout", "proxy_send_timeout"):
        seconds = int(re.search(rf"{timeout}\s+(\d+)s;", ws)[1])
        assert seconds >= 3600, f"{timeout} {seconds}s would cut idle boards"


def test_proxy_balances_over_both_apps_and_hides_metrics():
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    servers = re.findall(r"^\s*server\s+(\S+?):8000\b", text, re.MULTILINE)
    assert sorted(servers) == ["app1", "app2"]
    assert "return 404" in nginx_locations()["/metrics"]
    assert re.search(r"client_max_body_size\s+4m;", text), "the largest import (CAPACITY_MAX_IMPORT_BYTES, 4 MiB) must pass"


def loopback_nginx_conf(tmp_path: Path, upstream_port: int, listen_port: int) -> Path:
    """The real nginx.conf with the compose service names (resolved by Docker's DNS) on loopback."""
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    text = re.sub(r"server app[12]:8000", f"server 127.0.0.1:{upstream_port}", text)
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{listen_port};")
    text = text.replace("/tmp/", f"{tmp_path}/")  # pid and temp files
    text = text.replace("access_log /dev/stdout;", "access_log off;")
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    return path


NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx not installed (Debian package `nginx`): the proxy config is not run")


@needs_nginx
def test_proxy_config_passes_nginx_syntax_check(tmp_path):
    conf = loopback_nginx_conf(tmp_path, 8000, 8080)
    result = subprocess.run([NGINX, "-t", "-q", "-c", str(conf), "-p", str(tmp_path), "-e", "stderr"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def websocket_upstream(port: int) -> Iterator[None]:
    """A stand-in app on loopback: /ws/ echoes (after saying which headers arrived), /metrics answers."""

    def forwarded(headers) -> str:
        return " ".join(f"{name}={headers.get(name)}" for name in ("host", "x-forwarded-proto", "x-forwarded-for"))

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(forwarded(ws.headers))
        async for text in ws.iter_text():
            await ws.send_text(text)

    async def metrics_page(_request) -> PlainTextResponse:
        return PlainTextResponse("capacity_regions_not_ready 0\n")

    async def healthz(request) -> PlainTextResponse:
        return PlainTextResponse(forwarded(request.headers))

    app = Starlette(routes=[WebSocketRoute("/ws/regions/{region}", echo), Route("/metrics", metrics_page), Route("/healthz", healthz)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the stand-in app did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@needs_nginx
@pytest.mark.slow
def test_proxy_passes_websockets_through_and_keeps_metrics_inside(tmp_path):
    upstream, listen = free_port(), free_port()
    conf = loopback_nginx_conf(tmp_path, upstream, listen)
    with websocket_upstream(upstream):
        proxy = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(tmp_path), "-e", "stderr", "-g", "daemon off;"], stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{listen}/healthz", timeout=1).status_code == 200:
                        break
                assert proxy.poll() is None, proxy.stderr.read() if proxy.stderr else "nginx exited"
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.05)
            assert httpx.get(f"http://127.0.0.1:{listen}/metrics", timeout=2).status_code == 404
            assert httpx.get(f"http://127.0.0.1:{upstream}/metrics", timeout=2).status_code == 200

            async def talk() -> list[str]:
                async with websockets.connect(f"ws://127.0.0.1:{listen}/ws/regions/ROAZ05", open_timeout=5) as ws:
                    heard = [await asyncio.wait_for(ws.recv(), 5)]
                    await ws.send("hello through the proxy")
                    heard.append(await asyncio.wait_for(ws.recv(), 5))
                    return heard

            forwarded = "host=127.0.0.1 x-forwarded-proto=http x-forwarded-for=127.0.0.1"
            assert httpx.get(f"http://127.0.0.1:{listen}/healthz", timeout=2).text == forwarded
            assert asyncio.run(talk()) == [forwarded, "hello through the proxy"]
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
            if proxy.stderr:
                proxy.stderr.close()


# --- Kubernetes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_manifests_validate(version):
    documents = k8s_documents()
    assert len(documents) >= 9
    for name, doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} is not valid Kubernetes {version}: {exc.message} at {list(exc.path)}")


def test_kubernetes_kustomization_lists_every_manifest():
    kustomization = load_yaml(K8S / "kustomization.yaml")
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    assert kustomization["namespace"] == k8s_kind("Namespace")[0]["metadata"]["name"]
    images = {
        c["image"].split(":")[0] for d in k8s_kind("Deployment") + k8s_kind("Job") for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {image["name"] for image in kustomization["images"]}, "kustomize sets the image of every workload"


def test_kubernetes_has_every_object_an_operator_needs():
    kinds = {doc["kind"] for _, doc in k8s_documents()}
    assert {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Job"} <= kinds
    assert "Secret" not in kinds, "secrets are referenced, never shipped"


def app_container() -> dict:
    (deployment,) = k8s_kind("Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_kubernetes_pods_are_ready_on_readyz_and_alive_on_healthz():
    container = app_container()
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    config = k8s_kind("ConfigMap")[0]["data"]
    assert port_names[container["readinessProbe"]["httpGet"]["port"]] == int(config["CAPACITY_PORT"])
    assert container["command"] == ["capacity", "serve", "--workers", "2"]
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]


def test_kubernetes_pods_run_non_root_on_a_read_only_root_filesystem():
    for workload in k8s_kind("Deployment") + k8s_kind("Job"):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            data_dir = k8s_kind("ConfigMap")[0]["data"]["CAPACITY_DATA_DIR"]
            assert "emptyDir" in volumes[mounts[data_dir]], "the data dir (per-worker metric files) is writable scratch"
            assert "/tmp" in mounts


def test_kubernetes_takes_redis_and_database_urls_from_a_secret():
    for workload in k8s_kind("Deployment") + k8s_kind("Job"):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            assert "DATABASE_URL" in env
            for name, entry in env.items():
                if SECRET_NAMES.search(name):
                    assert "value" not in entry and entry["valueFrom"]["secretKeyRef"]["name"] == "capacity-secrets", name
    assert "REDIS_URL" in {e["name"] for e in app_container()["env"]}


def test_kubernetes_configmap_sets_only_settings_the_app_reads(monkeypatch):
    (configmap,) = k8s_kind("ConfigMap")
    data: dict[str, str] = configmap["data"]
    known = {f"CAPACITY_{name.upper()}" for name in Settings.model_fields} | {"FORWARDED_ALLOW_IPS"}
    assert set(data) <= known, f"not settings of capacity/config.py: {set(data) - known}"
    assert not {"REDIS_URL", "DATABASE_URL", "CAPACITY_REDIS_URL", "CAPACITY_DATABASE_URL"} & set(data), "URLs carry credentials"
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.host == "0.0.0.0" and settings.durability == "sql" and settings.migrates_on_start() is False
    assert str(settings.data_dir) == data["CAPACITY_DATA_DIR"]


def test_kubernetes_service_ingress_hpa_and_pdb_point_at_the_app():
    (deployment,) = k8s_kind("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    (service,) = k8s_kind("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= {p["name"] for p in app_container()["ports"]}
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for ingress in k8s_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == service["metadata"]["name"] and backend["port"]["name"] in service_ports
    (hpa,) = k8s_kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["minReplicas"] >= 2
    (pdb,) = k8s_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"].get("maxUnavailable", 1) < hpa["spec"]["minReplicas"]


def test_kubernetes_ingress_keeps_websockets_open_and_metrics_inside():
    ingresses = {i["metadata"]["name"]: i for i in k8s_kind("Ingress")}
    main = ingresses["capacity"]
    annotations = main["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert main["spec"]["ingressClassName"] == "nginx" and main["spec"]["tls"]
    blocked = [i for i in ingresses.values() if any(p["path"] == "/metrics" for r in i["spec"]["rules"] for p in r["http"]["paths"])]
    assert blocked and blocked[0]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/denylist-source-range"].startswith("0.0.0.0/0")


def test_kubernetes_migration_job_upgrades_the_schema_with_the_app_image():
    (job,) = k8s_kind("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["capacity", "db", "upgrade"]
    assert container["image"] == app_container()["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 1
    assert k8s_kind("ConfigMap")[0]["data"]["CAPACITY_AUTO_MIGRATE"] == "false", "only the Job migrates"


# --- Prometheus and Grafana ----------------------------------------------------------------------


def test_alert_rules_use_only_metrics_the_app_exports():
    allowed = exported_metric_names() | {"up"}
    for rule in alert_rules():
        used = selectors(rule["expr"])
        assert used, rule["alert"]
        assert used <= allowed, f"{rule['alert']} uses {used - allowed}, which the app does not export"


def test_alert_rules_cover_stale_feeds_ingest_errors_drops_outages_and_rebuilds():
    used_by = {rule["alert"]: selectors(rule["expr"]) for rule in alert_rules()}
    everything = set().union(*used_by.values())
    for metric in (
        "capacity_stale_facilities",
        "capacity_reports_rejected_total",
        "capacity_ws_dropped_total",
        "capacity_regions_not_ready",
        "capacity_rebuilds_total",
        "up",
    ):
        assert metric in everything, f"no alert on {metric}"
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        if "up" in selectors(rule["expr"]):
            assert 'job="capacity"' in rule["expr"], "the scrape job of prometheus.yml"


def test_prometheus_scrapes_both_apps_and_loads_the_alert_rules():
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "capacity"]
    assert job["metrics_path"] == "/metrics"
    assert sorted(job["static_configs"][0]["targets"]) == ["app1:8000", "app2:8000"]
    mounts = " ".join(compose()["services"]["prometheus"]["volumes"])
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml" in mounts


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`): rules not run")


@needs_promtool
def test_promtool_accepts_the_config_and_the_rules():
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"]):
        result = subprocess.run([PROMTOOL, *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_every_alert_fires_on_its_promtool_unit_test():
    tests = load_yaml(DEPLOY / "prometheus" / "alerts.test.yml")["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert fired == {rule["alert"] for rule in alert_rules()}, "an alert without a test that fires it"
    result = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts.test.yml"], cwd=DEPLOY / "prometheus", capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_panels_use_only_metrics_the_app_exports():
    allowed = exported_metric_names() | {"up"}
    shown: set[str] = set()
    for panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} shows nothing"
        for target in panel["targets"]:
            used = selectors(target["expr"])
            assert used <= allowed, f"panel {panel['title']!r} uses {used - allowed}"
            shown |= used
    assert {family_of(s) for s in shown} >= metric_families(), f"no panel for {metric_families() - {family_of(s) for s in shown}}"


def test_dashboard_shows_latency_quantiles_and_the_region_variable_is_exported():
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "capacity.json").read_text())
    exprs = [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]
    for histogram in ("capacity_apply_seconds_bucket", "capacity_record_seconds_bucket"):
        assert any("histogram_quantile(0.99" in e and histogram in e for e in exprs), histogram
    (region,) = dashboard["templating"]["list"]
    metric = re.fullmatch(r"label_values\((\w+), region\)", region["query"]["query"])[1]
    assert metric in exported_metric_names()
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids repeat"


def test_grafana_provisions_the_datasource_the_dashboard_uses():
    (datasource,) = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    uids = {t["datasource"]["uid"] for p in dashboard_panels() for t in p.get("targets", [])}
    assert uids == {datasource["uid"]}
