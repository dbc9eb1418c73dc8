"""The Kubernetes manifests of deploy/k8s as data, for the tests that check them."""

from functools import cache
from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).parents[2] / "deploy" / "k8s"
SECRETS = K8S / "secrets"

Manifest = dict[str, Any]


@cache
def kustomization() -> Manifest:
    document: Manifest = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return document


@cache
def manifests() -> tuple[Manifest, ...]:
    """Every document of every resource file the kustomization applies, namespaced as it would be
    (read once; tests must not change them)."""
    documents = []
    for resource in kustomization()["resources"]:
        for document in yaml.safe_load_all((K8S / resource).read_text()):
            if document:
                document.setdefault("metadata", {})
                if document["kind"] != "Namespace":
                    document["metadata"].setdefault("namespace", kustomization()["namespace"])
                document["_file"] = resource
                documents.append(document)
    return tuple(documents)


def without_file(document: Manifest) -> Manifest:
    return {key: value for key, value in document.items() if key != "_file"}


def of_kind(kind: str) -> list[Manifest]:
    return [d for d in manifests() if d["kind"] == kind]


def service_workloads() -> list[Manifest]:
    """ordertag's own roles: Deployments, and the consumer roles' StatefulSets (stable pod
    names for static group membership); not the data servers' StatefulSets."""
    return [
        d
        for d in manifests()
        if d["kind"] in {"Deployment", "StatefulSet"}
        and pod_labels(d)["app.kubernetes.io/part-of"] == "ordertag"
    ]


def data_servers() -> list[Manifest]:
    return [
        d
        for d in of_kind("StatefulSet")
        if pod_labels(d)["app.kubernetes.io/part-of"] == "ordertag-data"
    ]


def named(kind: str, name: str) -> Manifest:
    [document] = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    return document


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def the_container(workload: Manifest) -> Manifest:
    [container] = pod_spec(workload)["containers"]
    return container


def secret_generators() -> dict[str, Manifest]:
    return {g["name"]: g for g in kustomization()["secretGenerator"]}


def example_env(path: str) -> dict[str, str]:
    """The variables an env file of the secret generator holds, read from its committed example."""
    values = {}
    for line in (K8S / f"{path}.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def secret_keys(name: str) -> set[str]:
    """The keys of a generated Secret: its env files' variables and its files' names."""
    generator = secret_generators()[name]
    keys = set()
    for env in generator.get("envs", []):
        keys |= set(example_env(env))
    for file in generator.get("files", []):
        key, _, path = file.rpartition("=")
        keys.add(key or Path(path).name)
    return keys


def matches(selector: Manifest, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics: matchLabels and matchExpressions (In, NotIn, Exists)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
        if operator == "NotIn" and labels.get(key) in expression["values"]:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def prefix_of(prefix: str, path: str) -> bool:
    """Kubernetes' Prefix match: element by element (``/api`` matches ``/api/x``, not ``/apix``)."""
    elements = [e for e in prefix.split("/") if e]
    return [e for e in path.split("/") if e][: len(elements)] == elements


def ingress_route(host: str, path: str) -> tuple[Manifest, Manifest] | None:
    """The Ingress and its path entry that a request for ``host`` and ``path`` reaches, as the
    Ingress API defines it: an Exact path first, else the longest matching Prefix; None when no
    rule of any Ingress routes it."""
    exact, prefixes = None, []
    for ingress in of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            if rule.get("host") != host:
                continue
            for entry in rule["http"]["paths"]:
                assert entry["pathType"] in {"Exact", "Prefix"}, entry  # no controller-specific
                if entry["pathType"] == "Exact" and entry["path"] == path:
                    exact = (ingress, entry)
                elif entry["pathType"] == "Prefix" and prefix_of(entry["path"], path):
                    prefixes.append((ingress, entry))
    if exact is not None:
        return exact
    if not prefixes:
        return None
    return max(prefixes, key=lambda found: len(found[1]["path"].rstrip("/")))


def routed_to(host: str, path: str) -> str | None:
    """The Service a request for ``host`` and ``path`` reaches, None when it is not routed."""
    found = ingress_route(host, path)
    if found is None:
        return None
    name: str = found[1]["backend"]["service"]["name"]
    return name
