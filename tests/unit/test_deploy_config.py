"""deploy/docker-compose.yml cannot run here: check it stays consistent with the settings."""

from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from services.ingest.settings import IngestSettings
from services.notifier.settings import NotifierSettings
from services.tagger.settings import TaggerSettings

COMPOSE_FILE = Path(__file__).parents[2] / "deploy" / "docker-compose.yml"
SETTINGS_BY_SERVICE: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "tagger": TaggerSettings,
    "notifier": NotifierSettings,
}


def env_names(settings_class: type[BaseSettings]) -> set[str]:
    names = set()
    for field_name, field in settings_class.model_fields.items():
        names.add(f"ORDERTAG_{field_name.upper()}")
        annotation: Any = field.annotation
        for nested in getattr(annotation, "model_fields", {}):
            names.add(f"ORDERTAG_{field_name.upper()}__{nested.upper()}")
    return names


def test_every_compose_env_var_is_a_setting_of_its_service() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())

    for service, settings_class in SETTINGS_BY_SERVICE.items():
        environment = compose["services"][service]["environment"]
        unknown = set(environment) - env_names(settings_class)
        assert not unknown, f"{service}: env vars with no setting: {sorted(unknown)}"


def test_compose_runs_each_service_module_and_the_three_servers() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())

    for service in SETTINGS_BY_SERVICE:
        assert compose["services"][service]["command"] == ["python", "-m", f"services.{service}"]
    assert {"kafka", "mongo", "redis"} <= set(compose["services"])


K8S = COMPOSE_FILE.parent / "k8s"


def k8s_documents() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def test_every_kubernetes_env_var_is_a_setting_of_the_service_that_gets_it() -> None:
    documents = k8s_documents()
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in documents if d["kind"] == "Secret")["stringData"]

    for service, settings_class in SETTINGS_BY_SERVICE.items():
        deployment = next(
            d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == service
        )
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        names = {e["name"] for e in container.get("env", [])} | set(config) | set(secret)
        unknown = names - env_names(settings_class)
        assert not unknown, f"{service}: env vars with no setting: {sorted(unknown)}"
        assert container["command"] == ["python", "-m", f"services.{service}"]


def test_pods_get_longer_to_stop_than_the_services_take_to_shut_down() -> None:
    from shared import serve

    graceful_s = 20  # shared.serve: uvicorn's graceful shutdown
    assert "timeout_graceful_shutdown=20" in Path(serve.__file__).read_text()
    for document in k8s_documents():
        if document["kind"] == "Deployment":
            assert (
                document["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > graceful_s
            )
