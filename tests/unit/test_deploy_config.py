"""deploy/docker-compose.yml and deploy/k8s cannot run here: check that every variable they set is
a setting of the service that gets it, and that production refuses development defaults."""

import ipaddress
import json
import os
import re
import runpy
import sys
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import certifi
import jsonschema
import pytest
import yaml
from fastapi import FastAPI
from pydantic_settings import BaseSettings

from services.console.settings import ConsoleSettings, under
from services.ingest.settings import IngestSettings
from services.notifier.__main__ import main as notifier_main
from services.notifier.settings import NotifierSettings
from services.tagger.__main__ import main as tagger_main
from services.tagger.settings import TaggerSettings
from shared import serve
from shared.auth import hash_key
from tests.unit.k8s_manifests import (
    example_env,
    named,
    pod_labels,
    secret_generators,
    service_workloads,
)

DEPLOY = Path(__file__).parents[2] / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
SETTINGS_BY_SERVICE: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "tagger": TaggerSettings,
    "notifier": NotifierSettings,
}
# Set by the deployments, not yet settings of the services (docs/security-deploy.md says what each
# maps to). When a setting lands, its name leaves this list: test_pending_settings_are_still_pending
# says so.
PENDING_SETTINGS = {}


# the tagger's process also serves the console, which reads its own settings
ALSO_READ_BY = {TaggerSettings: ConsoleSettings}


def env_names(settings_class: type[BaseSettings]) -> set[str]:
    names = set()
    fields = dict(settings_class.model_fields)
    if settings_class in ALSO_READ_BY:
        fields |= ALSO_READ_BY[settings_class].model_fields
    for field_name, field in fields.items():
        names.add(f"ORDERTAG_{field_name.upper()}")
        annotation: Any = field.annotation
        for nested in getattr(annotation, "model_fields", {}):
            names.add(f"ORDERTAG_{field_name.upper()}__{nested.upper()}")
    return names


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


@pytest.mark.parametrize(("service", "settings_class"), SETTINGS_BY_SERVICE.items())
def test_every_compose_env_var_is_a_setting_of_its_service(
    service: str, settings_class: type[BaseSettings]
) -> None:
    environment = compose()["services"][service]["environment"]

    unknown = set(environment) - env_names(settings_class)
    assert not unknown, f"{service}: env vars with no setting: {sorted(unknown)}"


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    # the Compose specification's schema, as check-jsonschema vendors it (offline)
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text())

    jsonschema.validate(compose(), schema)


def test_compose_runs_each_service_module_and_the_three_servers() -> None:
    services = compose()["services"]

    for service in SETTINGS_BY_SERVICE:
        assert services[service]["command"] == ["python", "-m", f"services.{service}"]
    assert {"kafka", "mongo", "redis"} <= set(services)


REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]+\}$")


@pytest.mark.parametrize("service", SETTINGS_BY_SERVICE)
def test_compose_takes_keys_and_credentials_only_from_required_variables(service: str) -> None:
    environment = compose()["services"][service]["environment"]

    assert environment["ORDERTAG_ENV"] == "production"
    assert REQUIRED.match(environment["ORDERTAG_API_KEYS"])
    assert re.search(
        r":\$\{ORDERTAG_MONGO_APP_PASSWORD:\?[^}]+\}@", environment["ORDERTAG_MONGO_URL"]
    )
    assert re.search(r":\$\{ORDERTAG_REDIS_PASSWORD:\?[^}]+\}@", environment["ORDERTAG_REDIS_URL"])
    if service == "notifier":
        assert REQUIRED.match(environment["ORDERTAG_NOTIFIER_SESSION_SECRET"])


def test_compose_publishes_the_services_on_loopback_by_default_and_no_server() -> None:
    services = compose()["services"]

    for service in SETTINGS_BY_SERVICE:
        for port in services[service]["ports"]:
            assert port.startswith("${ORDERTAG_PUBLISH_ADDRESS:-127.0.0.1}:"), port
    for server in ("kafka", "mongo", "redis"):
        assert "ports" not in services[server]
    mongo = services["mongo"]["environment"]
    assert REQUIRED.match(mongo["MONGO_INITDB_ROOT_PASSWORD"])
    assert "--requirepass" in services["redis"]["command"]


def kubernetes_env_names(deployment: dict[str, Any]) -> set[str]:
    """Every variable a Deployment's container gets: env, the ConfigMap, its Secrets' env files."""
    generators = secret_generators()
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(named("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            for env in generators[source["secretRef"]["name"]].get("envs", []):
                names |= set(example_env(env))
    return names


@pytest.mark.parametrize("deployment", service_workloads(), ids=lambda d: d["metadata"]["name"])
def test_every_kubernetes_env_var_is_a_setting_of_the_service_that_gets_it(
    deployment: dict[str, Any],
) -> None:
    service = pod_labels(deployment)["app.kubernetes.io/name"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]

    unknown = kubernetes_env_names(deployment) - env_names(SETTINGS_BY_SERVICE[service])
    assert not unknown, f"{service}: env vars with no setting: {sorted(unknown)}"
    assert container["command"] == ["python", "-m", f"services.{service}"]


# What an operator puts where a Secret's example or Compose's required variable is left empty,
# for the services' own checks to judge: a key of their own (hash only), long random secrets.
OWN_API_KEYS = json.dumps(
    [{"name": "console", "sha256": hash_key("an operator's own key"), "scopes": ["read", "tag"]}]
)
OWN_SECRET = "generated-by-openssl-rand-" + "x" * 40


def filled(name: str, example: str) -> str:
    if name == "ORDERTAG_API_KEYS":
        return OWN_API_KEYS
    return example or OWN_SECRET


def kubernetes_environment(deployment: dict[str, Any]) -> dict[str, str]:
    """The variables a workload's container starts with, as Kubernetes gives them: the ConfigMap
    and its Secrets (env files, filled in), then its own env, which wins."""
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    environment = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment |= named("ConfigMap", source["configMapRef"]["name"])["data"]
        else:
            for env in secret_generators()[source["secretRef"]["name"]].get("envs", []):
                environment |= {k: filled(k, v) for k, v in example_env(env).items()}
    for variable in container.get("env", []):
        environment[variable["name"]] = variable.get("value", "pod-0")  # valueFrom: the pod name
    if "ORDERTAG_KAFKA_SSL_CAFILE" in environment:  # mounted from a Secret: a stand-in CA here
        environment["ORDERTAG_KAFKA_SSL_CAFILE"] = certifi.where()
    return environment


COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::\?[^}]*|:-([^}]*))\}")


def compose_environment(service: str) -> dict[str, str]:
    """The variables Compose gives a service: required ones as the operator set them, the others
    at their defaults."""

    def resolve(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if default is not None:
            return default
        return "0123456789abcdef" * 3 if name.endswith("PASSWORD") else filled(name, "")

    environment = compose()["services"][service]["environment"]
    return {name: COMPOSE_VARIABLE.sub(resolve, str(value)) for name, value in environment.items()}


def start(
    service: str, args: list[str], environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> FastAPI:
    """``python -m services.<service> ARGS`` with only ``environment``, up to where it would serve:
    its settings, ``shared.serve``'s checks and its app (no logging setup, no server)."""
    app, _ = serving(service, args, environment, monkeypatch)
    return app


def serving(
    service: str, args: list[str], environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[FastAPI, dict[str, Any]]:
    """``start``, and the options the service hands uvicorn."""
    for name in [name for name in os.environ if name.startswith("ORDERTAG_")]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    runs: list[tuple[FastAPI, dict[str, Any]]] = []
    run = SimpleNamespace(run=lambda app, **options: runs.append((app, options)))
    monkeypatch.setattr(serve, "uvicorn", run)
    for quiet in ("configure_logging", "dump_tasks_on_sigusr1", "tune_gc"):
        monkeypatch.setattr(serve, quiet, lambda *_, **__: None)
    if service == "ingest":
        runpy.run_module("services.ingest", run_name="__main__")  # no main(): the script itself
    elif service == "tagger":
        tagger_main(args)
    else:
        monkeypatch.setattr(sys, "argv", ["services.notifier", *args])
        notifier_main()
    [served] = runs
    return served


@pytest.mark.parametrize("deployment", service_workloads(), ids=lambda d: d["metadata"]["name"])
def test_every_kubernetes_workload_starts_with_what_the_deployment_gives_it(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In production each service refuses to start without what it must not default (API keys,
    the notifier's and the console's session secrets...): its own start, on the workload's
    variables, says whether the deployment provides it. The Secrets' examples are filled in."""
    service = pod_labels(deployment)["app.kubernetes.io/name"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    environment = kubernetes_environment(deployment)

    app = start(service, container.get("args", []), environment, monkeypatch)

    assert environment["ORDERTAG_ENV"] == "production"
    assert app.routes


@pytest.mark.parametrize("service", SETTINGS_BY_SERVICE)
def test_every_compose_service_starts_with_what_compose_gives_it(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = compose_environment(service)
    args = compose()["services"][service]["command"][3:]

    app = start(service, args, environment, monkeypatch)

    assert environment["ORDERTAG_ENV"] == "production"
    assert app.routes


BEHIND_THE_INGRESS = {"api", "web"}  # the components network-policies.yaml lets it reach


@pytest.mark.parametrize("deployment", service_workloads(), ids=lambda d: d["metadata"]["name"])
def test_every_kubernetes_workload_believes_forwarded_headers_from_private_addresses_only(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingress controller's pods have private addresses; only they and the monitoring
    namespace reach a service's HTTP port (test_k8s_network_policies.py), so the workloads behind
    the Ingress see the client's address and https, and no public address is believed."""
    service = pod_labels(deployment)["app.kubernetes.io/name"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]

    _, options = serving(
        service, container.get("args", []), kubernetes_environment(deployment), monkeypatch
    )

    networks = [ipaddress.ip_network(n) for n in options["forwarded_allow_ips"]]
    assert networks
    assert all(network.is_private for network in networks), networks
    assert options["proxy_headers"] is True
    if pod_labels(deployment)["app.kubernetes.io/component"] in BEHIND_THE_INGRESS:
        controller = ipaddress.ip_address("10.244.3.7")  # a pod of a usual pod network
        assert any(controller in network for network in networks)


@pytest.mark.parametrize("service", SETTINGS_BY_SERVICE)
def test_compose_services_believe_forwarded_headers_only_from_the_proxy_the_operator_names(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No proxy runs in the Compose file: by default nobody's headers are believed (a client
    could name itself); the operator names the one in front (the network's gateway)."""
    environment = compose_environment(service)
    args = compose()["services"][service]["command"][3:]
    behind_a_proxy = environment | {"ORDERTAG_FORWARDED_ALLOW_IPS": "172.30.80.1"}

    _, by_default = serving(service, args, environment, monkeypatch)
    _, named_proxy = serving(service, args, behind_a_proxy, monkeypatch)

    assert (by_default["proxy_headers"], by_default["forwarded_allow_ips"]) == (False, [])
    assert (named_proxy["proxy_headers"], named_proxy["forwarded_allow_ips"]) == (
        True,
        ["172.30.80.1"],
    )


def secrets_holding(deployment: dict[str, Any], variable: str) -> set[str]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {
        source["secretRef"]["name"]
        for source in container.get("envFrom", [])
        if "secretRef" in source
        and any(
            variable in example_env(env)
            for env in secret_generators()[source["secretRef"]["name"]].get("envs", [])
        )
    }


def test_one_sign_in_opens_the_console_and_the_support_page_on_kubernetes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The page accepts the console's session only when it checks it with the console's secret
    (one Secret for both, so one value) and the browser sends it the console's cookie: on two
    hosts, a cookie domain both are under, the same for both."""
    console, page = named("Deployment", "tagger-api"), named("Deployment", "notifier-web")
    secret = "ORDERTAG_CONSOLE_SESSION_SECRET"

    [shared_secret] = secrets_holding(console, secret)
    assert secrets_holding(page, secret) == {shared_secret}
    console_app = start("tagger", ["--role", "api"], kubernetes_environment(console), monkeypatch)
    page_app = start("notifier", ["--role", "web"], kubernetes_environment(page), monkeypatch)
    console_settings, page_settings = console_app.state.console_settings, page_app.state.settings
    assert page_settings.console_sessions_trusted
    domain = console_settings.console_cookie_domain
    assert page_settings.console_cookie_domain == domain
    console_host = urlsplit(page_settings.console_url).hostname
    if console_host != urlsplit(console_settings.alerts_url).hostname:  # api. and support.
        assert domain is not None, "two hosts: the console's cookie must reach both"
        assert under(domain, console_settings.alerts_url)
        assert under(domain, page_settings.console_url)


def test_one_sign_in_opens_the_console_and_the_support_page_under_compose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tagger, notifier = (compose()["services"][s]["environment"] for s in ("tagger", "notifier"))

    for shared_variable in ("ORDERTAG_CONSOLE_SESSION_SECRET", "ORDERTAG_CONSOLE_COOKIE_DOMAIN"):
        assert tagger[shared_variable] == notifier[shared_variable], shared_variable
    assert REQUIRED.match(tagger["ORDERTAG_CONSOLE_SESSION_SECRET"])
    page = start("notifier", [], compose_environment("notifier"), monkeypatch).state.settings
    assert page.console_sessions_trusted
