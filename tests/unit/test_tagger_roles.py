"""Choosing the tagger's roles: the setting, the command line, and what an app serves."""

import pytest

from services.tagger.__main__ import main
from services.tagger.app import create_app
from services.tagger.settings import Role, TaggerSettings, parse_roles


@pytest.mark.parametrize(
    ("spec", "roles"),
    [
        ("consumer", {Role.CONSUMER}),
        ("api,jobs", {Role.API, Role.JOBS}),
        (["api", "consumer"], {Role.API, Role.CONSUMER}),
        (["api, jobs", "api"], {Role.API, Role.JOBS}),
        ("all", set(Role)),
    ],
)
def test_roles_from_a_comma_list_or_repeated_option(
    spec: str | list[str], roles: set[Role]
) -> None:
    assert parse_roles(spec) == roles


def test_the_setting_defaults_to_every_role_and_reads_a_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert TaggerSettings().tagger_roles == set(Role)
    monkeypatch.setenv("ORDERTAG_TAGGER_ROLES", "consumer,jobs")
    assert TaggerSettings().tagger_roles == {Role.CONSUMER, Role.JOBS}


def test_an_unknown_role_is_refused_naming_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--role", "consumer,web"])
    assert exit_.value.code == 2
    assert "choose from consumer, api, jobs, all" in capsys.readouterr().err


def test_only_a_process_with_the_api_role_serves_the_tag_api() -> None:
    def paths(*roles: Role) -> set[str]:
        app = create_app(TaggerSettings(tagger_roles=frozenset(roles)))
        return set(app.openapi()["paths"]) | {getattr(r, "path", "") for r in app.routes}

    consumer = paths(Role.CONSUMER)
    api = paths(Role.API)
    assert {"/healthz", "/readyz", "/metrics"} <= consumer
    assert "/orders" not in consumer
    assert {"/healthz", "/readyz", "/orders", "/tags/{name}/merge"} <= api


def test_docs_and_metrics_can_be_switched_off() -> None:
    app = create_app(TaggerSettings(tagger_docs_enabled=False, tagger_metrics_enabled=False))
    served = {getattr(route, "path", "") for route in app.routes}
    assert not served & {"/docs", "/openapi.json", "/metrics"}
    assert "/orders" in app.openapi()["paths"]
