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
