"""The NetworkPolicies of deploy/k8s, evaluated as Kubernetes would for the connections that
matter: who may reach the servers, the HTTP ports and the metrics."""

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.unit.k8s_manifests import matches, named, of_kind, pod_labels

NAMESPACE = "ordertag"


@dataclass(frozen=True)
class Pod:
    labels: dict[str, str]
    namespace: str = NAMESPACE
    ports: dict[str, int] = field(default_factory=dict)  # named container ports


def workload_pod(kind: str, name: str) -> Pod:
    workload = named(kind, name)
    [container] = workload["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    return Pod(pod_labels(workload), ports=ports)


def peer_matches(peer: dict[str, Any], pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return False  # an address range: no pod of the cluster is meant here
    namespace_labels = {"kubernetes.io/metadata.name": pod.namespace}
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], namespace_labels):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or matches(peer["podSelector"], pod.labels)


def port_matches(rule_ports: list[dict[str, Any]] | None, port: int, target: Pod) -> bool:
    if not rule_ports:
        return True
    for rule_port in rule_ports:
        wanted = rule_port["port"]
        if wanted == port or (isinstance(wanted, str) and target.ports.get(wanted) == port):
            return True
    return False


def allowed(direction: str, pod: Pod, peer: Pod, port: int) -> bool:
    """Whether the policies selecting ``pod`` let traffic in (or out) to/from ``peer`` on port."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in of_kind("NetworkPolicy")
        if p["metadata"]["namespace"] == pod.namespace
        and direction in p["spec"]["policyTypes"]
        and matches(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True  # no policy selects it: open
    port_owner = pod if direction == "Ingress" else peer
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            from_peer = peers is None or any(
                peer_matches(p, peer, policy["metadata"]["namespace"]) for p in peers
            )
            if from_peer and port_matches(rule.get("ports"), port, port_owner):
                return True
    return False


def can_connect(source: Pod, target: Pod, port: int) -> bool:
    egress = source.namespace != NAMESPACE or allowed("Egress", source, target, port)
    return egress and allowed("Ingress", target, source, port)


def test_the_namespace_denies_everything_not_allowed() -> None:
    [deny] = [
        p
        for p in of_kind("NetworkPolicy")
        if p["spec"]["podSelector"] == {}
        and "ingress" not in p["spec"]
        and "egress" not in p["spec"]
    ]

    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}


KAFKA, MONGO, REDIS = (workload_pod("StatefulSet", n) for n in ("kafka", "mongo", "redis"))
INGEST = workload_pod("Deployment", "ingest")
TAGGER_CONSUMER = workload_pod("StatefulSet", "tagger-consumer")
TAGGER_API = workload_pod("Deployment", "tagger-api")
NOTIFIER_CONSUMER = workload_pod("StatefulSet", "notifier-consumer")
NOTIFIER_WEB = workload_pod("Deployment", "notifier-web")
SERVICES = [INGEST, TAGGER_CONSUMER, TAGGER_API, NOTIFIER_CONSUMER, NOTIFIER_WEB]
STRANGER = Pod({"app": "debug-shell"})  # any other pod of the namespace
OTHER_NAMESPACE = Pod({"app.kubernetes.io/part-of": "ordertag"}, namespace="default")
INGRESS_CONTROLLER = Pod({"app.kubernetes.io/name": "ingress-nginx"}, namespace="ingress-nginx")
PROMETHEUS = Pod({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring")
KEDA = Pod({"app": "keda-operator"}, namespace="keda")


@pytest.mark.parametrize("service", SERVICES, ids=lambda p: p.labels["app.kubernetes.io/name"])
def test_every_service_reaches_kafka_and_redis(service: Pod) -> None:
    assert can_connect(service, KAFKA, 9092)
    assert can_connect(service, REDIS, 6379)


def test_only_the_services_that_keep_data_reach_mongodb() -> None:
    assert can_connect(TAGGER_CONSUMER, MONGO, 27017)
    assert can_connect(NOTIFIER_WEB, MONGO, 27017)
    assert not can_connect(INGEST, MONGO, 27017)


@pytest.mark.parametrize(
    ("server", "port"),
    [(KAFKA, 9092), (MONGO, 27017), (REDIS, 6379)],
    ids=["kafka", "mongo", "redis"],
)
def test_no_other_pod_reaches_the_servers(server: Pod, port: int) -> None:
    for outsider in (STRANGER, OTHER_NAMESPACE, INGRESS_CONTROLLER, PROMETHEUS):
        assert not can_connect(outsider, server, port), outsider


def test_keda_reads_lag_from_kafka_and_nothing_else() -> None:
    assert can_connect(KEDA, KAFKA, 9092)
    assert not can_connect(KEDA, MONGO, 27017)
    assert not can_connect(KEDA, REDIS, 6379)


def test_the_kafka_controller_and_replication_ports_are_for_brokers_only() -> None:
    assert can_connect(KAFKA, KAFKA, 9093)
    assert can_connect(KAFKA, KAFKA, 9094)
    assert not can_connect(TAGGER_CONSUMER, KAFKA, 9093)
    assert not can_connect(TAGGER_CONSUMER, KAFKA, 9094)


def test_the_ingress_controller_reaches_only_the_http_roles() -> None:
    assert can_connect(INGRESS_CONTROLLER, INGEST, 8001)
    assert can_connect(INGRESS_CONTROLLER, TAGGER_API, 8002)
    assert can_connect(INGRESS_CONTROLLER, NOTIFIER_WEB, 8003)
    assert not can_connect(INGRESS_CONTROLLER, TAGGER_CONSUMER, 8002)
    assert not can_connect(INGRESS_CONTROLLER, NOTIFIER_CONSUMER, 8003)


def test_ingest_is_reachable_from_the_ingress_only() -> None:
    assert not can_connect(STRANGER, INGEST, 8001)
    assert not can_connect(OTHER_NAMESPACE, INGEST, 8001)
    assert not can_connect(TAGGER_API, INGEST, 8001)


@pytest.mark.parametrize("service", SERVICES, ids=lambda p: p.labels["app.kubernetes.io/name"])
def test_metrics_are_scraped_from_the_monitoring_namespace_only(service: Pod) -> None:
    [port] = service.ports.values()

    assert can_connect(PROMETHEUS, service, port)
    assert not can_connect(OTHER_NAMESPACE, service, port)
