"""deploy/docker-compose.yml and deploy/k8s cannot run here: check that every variable they set is
a setting of the service that gets it, and that production refuses development defaults."""

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic_settings import BaseSettings

from services.console.settings import ConsoleSettings
from services.ingest.settings import IngestSettings
from services.notifier.settings import NotifierSettings
from services.tagger.settings import TaggerSettings
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
