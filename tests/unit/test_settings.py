"""Settings come from EXCHANGE_* variables and fail at start with one clear line."""

import pytest

from runtime.errors import UserError
from runtime.settings import Settings, load_settings


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_KAFKA_BOOTSTRAP", "broker:9092")
    monkeypatch.setenv("EXCHANGE_TOPIC_PREFIX", "staging.")

    settings = load_settings()

    assert settings.kafka_bootstrap == "broker:9092"
    assert settings.topic_prefix == "staging."


def test_bad_setting_names_the_variable_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_KAFKA_PORT", "not-a-port")

    with pytest.raises(UserError) as caught:
        load_settings()

    message = str(caught.value)
    assert "EXCHANGE_KAFKA_PORT" in message
    assert "\n" not in message


def test_out_of_range_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_KAFKA_PORT", "70000")

    with pytest.raises(UserError, match="EXCHANGE_KAFKA_PORT"):
        load_settings()


def test_service_settings_extend_the_shared_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    class MatcherSettings(Settings):
        partition: int = 0

    monkeypatch.setenv("EXCHANGE_PARTITION", "3")

    settings = load_settings(MatcherSettings)

    assert settings.partition == 3
    assert settings.kafka_port == 9092
