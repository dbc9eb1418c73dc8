"""deploy/k8s cannot be applied here: check it against the Kubernetes and KEDA schemas, and that
it scales, probes and protects what docs/operations.md says it does.

Kubernetes schemas: the kubernetes-validate package (strict: unknown fields refused). KEDA's:
tests/schemas/keda/, generated from the CRDs in KEDA's Go module (tests/schemas/vendor_keda.py).
"""

import json
import re
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount

import services.console.pages
import services.notifier.page
from services.console.oidc_routes import CALLBACK
from services.ingest.settings import IngestSettings
from services.notifier.app import create_app as create_notifier_app
from services.notifier.live import KEEP_ALIVE_S
from services.notifier.settings import NotifierSettings
from services.notifier.settings import Role as NotifierRole
from services.tagger.app import create_app as create_tagger_app
from services.tagger.settings import Role as TaggerRole
from services.tagger.settings import TaggerSettings
from shared.settings import Topics
from tests.unit.k8s_manifests import (
    K8S,
    Manifest,
    data_servers,
    example_env,
    ingress_route,
    kustomization,
    manifests,
    matches,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    prefix_of,
    routed_to,
    secret_generators,
    secret_keys,
    service_workloads,
    the_container,
    without_file,
)

KUBERNETES_VERSION = "1.33.0"
KEDA_SCHEMAS = Path(__file__).parents[1] / "schemas" / "keda"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


def label(document: Manifest) -> str:
    return f"{document['_file']}:{document['kind']}/{document['metadata']['name']}"


@pytest.mark.parametrize(
    "document", [d for d in manifests() if d["kind"] not in KEDA_KINDS], ids=label
)
def test_manifest_is_valid_kubernetes(document: Manifest) -> None:
    kubernetes_validate.validate(without_file(document), KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("document", [d for d in manifests() if d["kind"] in KEDA_KINDS], ids=label)
def test_keda_object_is_valid_against_its_crd(document: Manifest) -> None:
    version = document["apiVersion"].split("/")[1]
    schema = json.loads((KEDA_SCHEMAS / f"{document['kind'].lower()}-{version}.json").read_text())

    jsonschema.validate(without_file(document), schema)


def test_the_keda_schema_refuses_what_keda_would() -> None:
    schema = json.loads((KEDA_SCHEMAS / "scaledobject-v1alpha1.json").read_text())
    scaled = without_file(named("ScaledObject", "tagger-consumer"))

    misspelt = {**scaled, "spec": {**scaled["spec"], "maxReplicas": 6}}
    with pytest.raises(jsonschema.ValidationError, match="maxReplicas"):
        jsonschema.validate(misspelt, schema)
    no_target = {
        **scaled,
        "spec": {k: v for k, v in scaled["spec"].items() if k != "scaleTargetRef"},
    }
    with pytest.raises(jsonschema.ValidationError, match="scaleTargetRef"):
        jsonschema.validate(no_target, schema)


def kafka_scaler_parameters() -> dict[str, dict[str, list[str]]]:
    document = json.loads((KEDA_SCHEMAS / "kafka-scaler-parameters.json").read_text())
    parameters: dict[str, dict[str, list[str]]] = document["parameters"]
    return parameters


@pytest.mark.parametrize("scaled", of_kind("ScaledObject"), ids=label)
def test_kafka_triggers_use_parameters_the_kafka_scaler_reads(scaled: Manifest) -> None:
    known = kafka_scaler_parameters()
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "kafka"
        for name, value in trigger["metadata"].items():
            assert name in known, name
            assert "triggerMetadata" in known[name]["from"], name
            assert not known[name]["enum"] or value in known[name]["enum"], (name, value)
        authentication = named("TriggerAuthentication", trigger["authenticationRef"]["name"])
        for reference in authentication["spec"]["secretTargetRef"]:
            assert "authParams" in known[reference["parameter"]]["from"], reference
            assert reference["key"] in secret_keys(reference["name"]), reference


def partitions_created(topic: str) -> int:
    script = named("ConfigMap", "kafka-setup")["data"]["setup.sh"]
    [count] = re.findall(rf"^topic {re.escape(topic)} (\d+)$", script, re.MULTILINE)
    return int(count)


CONSUMERS = {
    "tagger-consumer": (TaggerSettings().tagger_group_id, Topics().orders),
    "notifier-consumer": (NotifierSettings().notifier_group_id, Topics().tagged),
}


@pytest.mark.parametrize(("deployment", "group_and_topic"), CONSUMERS.items())
def test_consumers_scale_on_their_groups_lag_up_to_the_partition_count(
    deployment: str, group_and_topic: tuple[str, str]
) -> None:
    group, topic = group_and_topic
    [scaled] = [
        s for s in of_kind("ScaledObject") if s["spec"]["scaleTargetRef"]["name"] == deployment
    ]
    [trigger] = scaled["spec"]["triggers"]
    partitions = partitions_created(topic)
    config = named("ConfigMap", "ordertag-config")["data"]

    assert (trigger["metadata"]["consumerGroup"], trigger["metadata"]["topic"]) == (group, topic)
    assert (
        scaled["spec"]["maxReplicaCount"] == partitions == int(config["ORDERTAG_KAFKA_PARTITIONS"])
    )
    assert trigger["metadata"]["allowIdleConsumers"] == "false"
    assert 1 <= scaled["spec"]["minReplicaCount"] <= partitions
    consumer = named("StatefulSet", deployment)  # stable pod names: static members
    [instance_id] = [
        e for e in the_container(consumer)["env"] if e["name"] == "ORDERTAG_KAFKA_GROUP_INSTANCE_ID"
    ]
    assert the_container(consumer)["args"] == ["--role", "consumer"]
    assert instance_id["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": deployment,
    }


def test_http_roles_scale_on_cpu() -> None:
    targets = {}
    for hpa in of_kind("HorizontalPodAutoscaler"):
        [metric] = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        targets[hpa["spec"]["scaleTargetRef"]["name"]] = hpa

    assert set(targets) == {"ingest", "tagger-api", "notifier-web"}
    for name in targets:
        labels = pod_labels(named("Deployment", name))
        assert labels["app.kubernetes.io/component"] in {"api", "web"}


def test_autoscaled_deployments_leave_replicas_to_their_autoscaler() -> None:
    autoscaled = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind("HorizontalPodAutoscaler")}
    autoscaled |= {s["spec"]["scaleTargetRef"]["name"] for s in of_kind("ScaledObject")}

    for deployment in service_workloads():
        name = deployment["metadata"]["name"]
        assert ("replicas" in deployment["spec"]) == (name not in autoscaled), name


ROLES = {"tagger": {"consumer", "api", "jobs"}, "notifier": {"consumer", "web"}}


@pytest.mark.parametrize(("service", "roles"), ROLES.items())
def test_each_role_runs_as_its_own_deployment(service: str, roles: set[str]) -> None:
    deployments = [
        d for d in service_workloads() if pod_labels(d)["app.kubernetes.io/name"] == service
    ]
    run = [the_container(d)["args"] for d in deployments]

    assert sorted(run) == sorted(["--role", role] for role in roles)
    for deployment in deployments:
        assert (
            pod_labels(deployment)["app.kubernetes.io/component"]
            == the_container(deployment)["args"][1]
        )


@pytest.mark.parametrize("deployment", service_workloads(), ids=label)
def test_every_deployment_is_probed_and_has_a_disruption_budget(deployment: Manifest) -> None:
    container = the_container(deployment)
    [port] = container["ports"]
    probes = {kind: container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    budgets = [
        b
        for b in of_kind("PodDisruptionBudget")
        if matches(b["spec"]["selector"], pod_labels(deployment))
    ]

    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert {p["port"] for p in probes.values()} == {port["name"]}
    assert len(budgets) == 1
    selected = [
        d for d in service_workloads() if matches(budgets[0]["spec"]["selector"], pod_labels(d))
    ]
    assert selected == [deployment]  # one budget per Deployment, not shared across roles


def test_every_stateful_server_has_a_disruption_budget_of_one() -> None:
    for server in data_servers():
        if server["spec"]["replicas"] == 1:
            continue  # a budget would block every drain of its node
        [budget] = [
            b
            for b in of_kind("PodDisruptionBudget")
            if matches(b["spec"]["selector"], pod_labels(server))
        ]
        assert budget["spec"]["maxUnavailable"] == 1


def workloads() -> list[Manifest]:
    return [d for d in manifests() if d["kind"] in {"Deployment", "StatefulSet", "Job"}]


@pytest.mark.parametrize("workload", workloads(), ids=label)
def test_every_pod_meets_the_restricted_pod_security_standard(workload: Manifest) -> None:
    spec = pod_spec(workload)

    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"] + spec.get("initContainers", []):
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert (
        named("Namespace", "ordertag")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "restricted"
    )


def secret_references(workload: Manifest) -> set[tuple[str, str | None]]:
    """(secret, key) pairs a workload reads; key None for a whole Secret."""
    found: set[tuple[str, str | None]] = set()
    spec = pod_spec(workload)
    for container in spec["containers"] + spec.get("initContainers", []):
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                found.add((source["secretRef"]["name"], None))
        for variable in container.get("env", []):
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                found.add((reference["name"], reference["key"]))
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            items = volume["secret"].get("items") or [{"key": None}]
            found |= {(volume["secret"]["secretName"], item["key"]) for item in items}
    return found


@pytest.mark.parametrize("workload", workloads(), ids=label)
def test_every_secret_a_pod_reads_is_generated_with_the_keys_it_needs(workload: Manifest) -> None:
    generators = secret_generators()
    for name, key in secret_references(workload):
        assert name in generators, f"{name}: no secretGenerator in kustomization.yaml"
        assert key is None or key in secret_keys(name), f"{name} has no key {key!r}"


def test_every_generated_secret_has_a_committed_example_and_no_real_value() -> None:
    ignored = (K8S / "secrets" / ".gitignore").read_text().split()
    for generator in secret_generators().values():
        for env in generator.get("envs", []):
            assert (K8S / f"{env}.example").is_file(), env
    assert "*" in ignored
    assert "!*.example" in ignored


def test_the_services_refuse_development_defaults_in_this_deployment() -> None:
    config = named("ConfigMap", "ordertag-config")["data"]

    assert config["ORDERTAG_ENV"] == "production"
    assert config["ORDERTAG_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert int(config["ORDERTAG_KAFKA_REPLICATION_FACTOR"]) == 3


def kafka_properties() -> dict[str, str]:
    text = named("ConfigMap", "kafka-config")["data"]["server.properties"]
    pairs = (
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    return dict(pairs)


def test_kafka_listens_only_with_authentication_and_tls() -> None:
    properties = kafka_properties()
    protocols = dict(
        pair.split(":") for pair in properties["listener.security.protocol.map"].split(",")
    )

    assert protocols == {"CLIENTS": "SASL_SSL", "REPLICATION": "SASL_SSL", "CONTROLLER": "SSL"}
    assert properties["listener.name.controller.ssl.client.auth"] == "required"
    assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["auto.create.topics.enable"] == "false"
    assert int(properties["min.insync.replicas"]) == 2


def test_every_kafka_user_of_the_deployment_gets_a_scram_credential() -> None:
    start = named("ConfigMap", "kafka-config")["data"]["start.sh"]
    users = set(re.findall(r'--add-scram "\$\(scram (\w+) ', start))
    setup = named("ConfigMap", "kafka-setup")["data"]["setup.sh"]
    principals = set(re.findall(r"User:(\w+)", setup))

    assert principals <= users
    assert users == {"ingest", "tagger", "notifier", "keda", "admin"}
    for service in ("ingest", "tagger", "notifier"):
        [env_file] = secret_generators()[f"ordertag-{service}"]["envs"]
        credentials = example_env(env_file)
        assert credentials["ORDERTAG_KAFKA_SASL_USERNAME"] == service
        assert "ORDERTAG_KAFKA_SASL_PASSWORD" in credentials


def test_mongo_and_redis_require_credentials() -> None:
    mongo = the_container(named("StatefulSet", "mongo"))
    redis = the_container(named("StatefulSet", "redis"))
    acl = (K8S / "secrets" / "redis-users.acl.example").read_text()
    users = dict(re.findall(r"^user (\w+) (.*)$", acl, re.MULTILINE))

    assert {"--auth", "--keyFile"} <= set(mongo["args"])
    assert "--aclfile" in redis["args"]
    assert set(users) == {"default", "ingest", "tagger", "notifier"}
    for name, rules in users.items():
        assert rules.startswith("on #"), f"{name}: password by hash only"
        assert "nopass" not in rules
        if name != "default":
            assert "-@all" in rules, f"{name}: only the commands it uses"
            assert "~*" not in rules, f"{name}: only its own keys"


def test_pods_get_longer_to_stop_than_the_services_take_to_shut_down() -> None:
    from shared import serve

    graceful_s = 20  # shared.serve: uvicorn's graceful shutdown
    assert "timeout_graceful_shutdown=20" in Path(serve.__file__).read_text()
    for deployment in service_workloads():
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > graceful_s


def test_the_kustomization_applies_every_manifest_file() -> None:
    listed = set(kustomization()["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}

    assert listed == present


def env_values(kind: str, name: str) -> dict[str, str]:
    """The literal values of a workload's env (not those taken from a field or a Secret)."""
    container = the_container(named(kind, name))
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def api_host() -> str:
    """Where people open the console (and tools call the Tag API): the notifier links there."""
    console = env_values("Deployment", "notifier-web")["ORDERTAG_NOTIFIER_CONSOLE_URL"]
    return urlsplit(console).netloc


def support_host() -> str:
    """Where people open the support page: the console links there."""
    return urlsplit(env_values("Deployment", "tagger-api")["ORDERTAG_CONSOLE_ALERTS_URL"]).netloc


# What the services serve that the Ingress keeps inside the cluster, and why. Every other path
# an HTTP role serves is routed to it on its host.
KEPT_INSIDE = {
    "/metrics": "Prometheus scrapes the pods from the monitoring namespace (network-policies.yaml)",
    "/healthz": "the kubelet probes the pods themselves",
    "/readyz": "the kubelet probes the pods themselves",
    "/docs": "Swagger UI and its assets: for developers, not for the public network",
    "/openapi.json": "the HTTP contract, likewise",
    "/asyncapi.json": "the Kafka contract, likewise",
}


def kept_inside(path: str) -> bool:
    return any(prefix_of(inside, path) for inside in KEPT_INSIDE)


def served_paths(app: FastAPI) -> list[str]:
    """A request path for every route and mount of an app, its parameters filled in."""
    paths = set()
    for route in iter_route_contexts(app.routes):  # the included routers' routes too
        path = route.path
        if path is None:
            continue
        if isinstance(route.original_route, Mount):
            path += "/file"
        paths.add(re.sub(r"\{[^}]*\}", "x", path) or "/")
    return sorted(paths)


@cache
def tag_api_app() -> FastAPI:
    """What the tagger's api role serves: the Tag API, the console (its pages, its API, its
    static files, sign-in and the provider's callback), the probes, metrics and docs."""
    return create_tagger_app(TaggerSettings(tagger_roles=frozenset({TaggerRole.API})))


@pytest.mark.parametrize("path", served_paths(tag_api_app()))
def test_the_api_host_routes_every_path_of_the_tag_api_and_the_console_to_the_tagger(
    path: str,
) -> None:
    """Staff open the console and tools call the Tag API on one host; a resource added to the
    API (a new router) or the console is routed with it, or this names it."""
    expected = None if kept_inside(path) else "tagger"

    assert routed_to(api_host(), path) == expected


def test_ingress_routes_no_metrics_or_docs() -> None:
    hosts = [rule["host"] for ingress in of_kind("Ingress") for rule in ingress["spec"]["rules"]]
    for host in hosts:
        for path in ("/metrics", "/docs", "/docs/assets/x", "/openapi.json", "/asyncapi.json"):
            assert routed_to(host, path) is None, (host, path)
    for ingress in of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["path"] != "/" or path["pathType"] == "Exact", "/ would route /metrics"


def test_pages_and_alert_links_name_the_ingress_hosts() -> None:
    """Both notifier roles name the console on its Ingress host over https: the web role for the
    page's links, the consumer for each alert's order_url (chat, e-mail, webhooks), which must
    open the console's order page, not the Tag API's JSON on a local port. The console names
    the support page likewise."""
    for workload in (("StatefulSet", "notifier-consumer"), ("Deployment", "notifier-web")):
        env = env_values(*workload)
        console = urlsplit(env["ORDERTAG_NOTIFIER_CONSOLE_URL"])
        assert console.scheme == "https", workload
        assert routed_to(console.netloc, "/console/orders/A1") == "tagger", workload
        assert "ORDERTAG_NOTIFIER_ORDER_URL_BASE" not in env, workload
    console_env = env_values("Deployment", "tagger-api")
    alerts = urlsplit(console_env["ORDERTAG_CONSOLE_ALERTS_URL"])
    assert alerts.scheme == "https"
    assert routed_to(alerts.netloc, alerts.path or "/") == "notifier"
    # behind the Ingress the console sees http: the provider gets the https callback as set
    callback = urlsplit(console_env["ORDERTAG_CONSOLE_OIDC_REDIRECT_URL"])
    assert (callback.scheme, callback.netloc) == ("https", api_host())
    assert routed_to(callback.netloc, callback.path) == "tagger"
    assert callback.path == CALLBACK


@cache
def support_page_app() -> FastAPI:
    """What the notifier's web role serves: the support page, its sign-in, icons, script, the
    console's stylesheet and script, the language switch, the JSON API and its live stream."""
    return create_notifier_app(NotifierSettings(notifier_role=NotifierRole.WEB))


@pytest.mark.parametrize("path", served_paths(support_page_app()))
def test_the_support_host_routes_every_path_of_the_support_page_to_the_notifier(
    path: str,
) -> None:
    expected = None if kept_inside(path) else "notifier"

    assert routed_to(support_host(), path) == expected


NOTIFIER_STATIC = Path(services.notifier.page.__file__).parent / "static"
CONSOLE_TEMPLATES = Path(services.console.pages.__file__).parent / "templates"
# where the support page's markup and script name a path of their own site (not the console's:
# those start with {{ console_base }} or ${CONSOLE}, the console's own host)
PAGE_PATH = re.compile(
    r"(?:(?:href|src|action)=|(?:fetch|call|EventSource)\(|location\.href\s*=\s*)"
    r"([\"'`])(/.*?)\1"
)


def paths_the_support_page_asks_for() -> list[str]:
    sources = [
        NOTIFIER_STATIC / "index.html",
        NOTIFIER_STATIC / "login.html",
        NOTIFIER_STATIC / "alerts.js",
        # the console's top bar on the page: stylesheet, script, language switch, sign-out
        CONSOLE_TEMPLATES / "base.html",
    ]
    found = {"/favicon.ico"}  # asked for by browsers whatever the page says
    for source in sources:
        for match in PAGE_PATH.finditer(source.read_text()):
            path = match.group(2).split("?")[0]
            found.add(re.sub(r"\{\{.*?\}\}|\$\{.*?\}", "x", path))
    return sorted(found)


@pytest.mark.parametrize("path", paths_the_support_page_asks_for())
def test_everything_the_support_page_asks_its_own_host_for_is_routed_to_the_notifier(
    path: str,
) -> None:
    assert routed_to(support_host(), path) == "notifier"


def test_the_live_stream_reaches_the_page_unbuffered_and_is_not_cut_between_keep_alives() -> None:
    """ingress-nginx takes these annotations per Ingress (its user guide, "Annotations"). A read
    timeout shorter than the stream's silence between keep-alives would cut it; a few
    keep-alives missed in a row mean the stream is dead, and the page reconnects."""
    found = ingress_route(support_host(), "/api/events")
    assert found is not None
    ingress, entry = found
    annotations = ingress["metadata"].get("annotations", {})

    assert entry["backend"]["service"]["name"] == "notifier"
    assert annotations.get("nginx.ingress.kubernetes.io/proxy-buffering") == "off"
    read_timeout = int(annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "60"))
    assert read_timeout >= 4 * KEEP_ALIVE_S


# ingress-nginx refuses (413) a request body over its proxy-body-size, 1m unless an Ingress's
# annotation says otherwise (its ConfigMap and annotation docs); nginx sizes: k, m, g
NGINX_BODY_SIZE_DEFAULT = "1m"
NGINX_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def nginx_size(text: str) -> int:
    size = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    assert size, text
    return int(size.group(1)) * NGINX_UNITS[size.group(2).lower()]


BODIES = {  # a path that takes the largest body the service accepts, and that largest body
    "ingest": (
        "/orders/batch",
        IngestSettings().ingest_max_body_bytes,
        "ORDERTAG_INGEST_MAX_BODY_BYTES",
    ),
    "tagger": (
        "/tags/bulk",
        TaggerSettings().tagger_max_body_bytes,
        "ORDERTAG_TAGGER_MAX_BODY_BYTES",
    ),
}


@pytest.mark.parametrize("service", BODIES)
def test_the_ingress_lets_through_every_body_the_service_accepts(service: str) -> None:
    """A batch of orders the service takes (up to ORDERTAG_INGEST_MAX_BODY_BYTES, 8 MiB) must not
    be refused by the controller first, at its default of 1 MiB."""
    path, largest, variable = BODIES[service]
    for workload in service_workloads():
        if pod_labels(workload)["app.kubernetes.io/name"] == service:
            largest = int(
                env_values(workload["kind"], workload["metadata"]["name"]).get(variable, largest)
            )
    hosts = {
        rule["host"]
        for ingress in of_kind("Ingress")
        for rule in ingress["spec"]["rules"]
        if any(p["backend"]["service"]["name"] == service for p in rule["http"]["paths"])
    }
    assert hosts
    for host in hosts:
        found = ingress_route(host, path)
        assert found is not None, (host, path)
        annotations = found[0]["metadata"].get("annotations", {})
        size = annotations.get(
            "nginx.ingress.kubernetes.io/proxy-body-size", NGINX_BODY_SIZE_DEFAULT
        )
        assert nginx_size(size) >= largest, (host, size, largest)
