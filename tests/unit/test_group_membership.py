"""Consumer roles join their group as static members (KIP-345) when an instance id is set, with
a session long enough for a restart; otherwise as dynamic members, noticed gone sooner."""

import pytest
from pydantic import ValidationError

from services.notifier.settings import NotifierSettings
from services.tagger.settings import TaggerSettings
from shared.kafka import (
    DYNAMIC_SESSION_TIMEOUT_MS,
    STATIC_SESSION_TIMEOUT_MS,
    GroupMembership,
    group_membership,
)
from shared.settings import Settings


def test_a_consumer_without_an_instance_id_is_a_dynamic_member() -> None:
    assert group_membership(Settings()) == GroupMembership(None, DYNAMIC_SESSION_TIMEOUT_MS)


def test_the_pod_name_makes_a_static_member_with_a_session_a_restart_fits_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERTAG_KAFKA_GROUP_INSTANCE_ID", "tagger-consumer-2")

    for settings in (TaggerSettings(), NotifierSettings()):
        membership = group_membership(settings)
        assert membership == GroupMembership("tagger-consumer-2", STATIC_SESSION_TIMEOUT_MS)
    assert STATIC_SESSION_TIMEOUT_MS > DYNAMIC_SESSION_TIMEOUT_MS


def test_a_session_timeout_set_explicitly_wins() -> None:
    settings = Settings(kafka_group_instance_id="n-0", kafka_session_timeout_ms=90_000)

    assert group_membership(settings).session_timeout_ms == 90_000


@pytest.mark.parametrize("timeout", [1_000, 600_000])
def test_a_session_timeout_the_broker_would_refuse_is_refused_at_start(timeout: int) -> None:
    with pytest.raises(ValidationError, match="kafka_session_timeout_ms"):
        Settings(kafka_session_timeout_ms=timeout)
