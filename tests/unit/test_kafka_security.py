"""The Kafka listener security settings reach aiokafka and FastStream as the deploy sets them."""

import ssl

import pytest
from faststream.security import SASLScram512

from shared.kafka import KafkaSecurityError, broker_security, connection_options
from shared.settings import Settings


def test_local_stack_connects_in_plaintext_with_nothing_but_the_servers() -> None:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:9092")

    assert connection_options(settings) == {"bootstrap_servers": "127.0.0.1:9092"}
    assert broker_security(settings) is None


def test_production_scram_over_tls_reaches_aiokafka_and_faststream() -> None:
    settings = Settings(
        kafka_bootstrap_servers="kafka:9094",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="tagger",
        kafka_sasl_password="s3cret",  # type: ignore[arg-type]
    )

    options = connection_options(settings)
    security = broker_security(settings)

    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("tagger", "s3cret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl


def test_sasl_without_a_mechanism_is_refused_naming_the_setting() -> None:
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="tagger")

    with pytest.raises(KafkaSecurityError, match="ORDERTAG_KAFKA_SASL_MECHANISM"):
        connection_options(settings)
