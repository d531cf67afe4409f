"""Logs are one JSON object per line, with `extra` fields as keys."""

import json
import logging

import pytest

from runtime.logs import JsonFormatter, TextFormatter, configure_logging


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "matcher", "levelname": "INFO", "levelno": 20, "msg": msg})
    record.__dict__.update(extra)
    return record


def test_json_line_carries_message_and_extra_fields() -> None:
    line = JsonFormatter().format(_record("recovered", partition=2, seconds=1.5))

    parsed = json.loads(line)

    assert parsed["msg"] == "recovered"
    assert parsed["logger"] == "matcher"
    assert parsed["level"] == "INFO"
    assert parsed["partition"] == 2
    assert parsed["seconds"] == 1.5
    assert "\n" not in line


def test_text_line_appends_extra_fields() -> None:
    line = TextFormatter().format(_record("recovered", partition=2))

    assert line.endswith("matcher: recovered partition=2")


def test_configured_logging_writes_json_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")

    logging.getLogger("gateway").info("listening", extra={"port": 8000})

    parsed = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert parsed["msg"] == "listening"
    assert parsed["port"] == 8000
