"""The local broker's pieces that need no JVM: finding tools, the jar cache, config, errors."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.broker import (
    COMPLETE_MARKER,
    ensure_port_free,
    find_java,
    free_port,
    log_excerpt,
    new_cluster_id,
    resolve_kafka_jars,
    server_properties,
)
from runtime.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PATH and JAVA_HOME point at an empty folder: no java, no mvn."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("JAVA_HOME", str(empty))
    return empty


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_missing_java_is_named(no_tools: Path) -> None:
    with pytest.raises(UserError, match=r"Java 17\+ is needed .* no `java` on PATH"):
        find_java()


def test_java_home_is_preferred_to_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    java_home_java = _executable(tmp_path / "jdk" / "bin" / "java")
    _executable(tmp_path / "bin" / "java")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    assert find_java() == str(java_home_java)


def test_java_on_path_serves_when_java_home_has_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path_java = _executable(tmp_path / "bin" / "java")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))

    assert find_java() == str(path_java)


def test_kafka_command_without_java_fails_with_one_clear_line(tmp_path: Path) -> None:
    env = {
        "PATH": str(tmp_path / "nowhere"),
        "JAVA_HOME": str(tmp_path / "nowhere"),
        "HOME": str(tmp_path),
        "EXCHANGE_DATA_DIR": str(tmp_path / "data"),
        "EXCHANGE_CACHE_DIR": str(tmp_path / "cache"),
    }

    done = subprocess.run(
        [sys.executable, "-m", "exchange", "kafka"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("exchange kafka: error: Java 17+ is needed")
    assert not (tmp_path / "cache").exists()


def test_port_in_use_is_refused() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is already in use"):
            ensure_port_free(port)


def test_free_port_is_accepted() -> None:
    ensure_port_free(free_port())


def test_cached_jars_are_used_without_maven(no_tools: Path, tmp_path: Path) -> None:
    libs = tmp_path / "cache" / "kafka-4.1.1" / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-4.1.1.jar").write_bytes(b"jar")
    (libs / COMPLETE_MARKER).write_text("kafka_2.13-4.1.1.jar\n")

    assert resolve_kafka_jars("4.1.1", tmp_path / "cache") == libs


def test_missing_maven_is_named_when_jars_are_not_cached(no_tools: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"Maven \(`mvn`\) is needed once to fetch the Kafka 4\.1\.1 jars"):
        resolve_kafka_jars("4.1.1", tmp_path / "cache")


def test_cache_missing_a_listed_jar_is_resolved_again(no_tools: Path, tmp_path: Path) -> None:
    libs = tmp_path / "cache" / "kafka-4.1.1" / "libs"
    libs.mkdir(parents=True)
    (libs / COMPLETE_MARKER).write_text("kafka_2.13-4.1.1.jar\n")

    with pytest.raises(UserError, match="Maven"):
        resolve_kafka_jars("4.1.1", tmp_path / "cache")


def test_server_properties_make_one_node_that_supports_transactions(tmp_path: Path) -> None:
    properties = _properties(server_properties(port=9092, controller_port=9093, storage_dir=tmp_path))

    assert properties["process.roles"] == "broker,controller"
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["transaction.state.log.replication.factor"] == "1"
    assert properties["transaction.state.log.min.isr"] == "1"
    assert properties["group.initial.rebalance.delay.ms"] == "0"
    assert properties["log.dirs"] == str(tmp_path)


def test_server_properties_listen_on_loopback_only(tmp_path: Path) -> None:
    properties = _properties(server_properties(port=19092, controller_port=19093, storage_dir=tmp_path))

    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:19093"


def test_log_excerpt_shows_the_last_error_and_its_exception(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    log.write_text(
        "[t] INFO starting (kafka.Kafka$)\n"
        "[t] ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)\n"
        "java.lang.RuntimeException: node ID not found\n"
        "\tat kafka.server.KafkaRaftServer.initializeLogDirs(KafkaRaftServer.scala:165)\n"
    )

    assert log_excerpt(log) == (
        "[t] ERROR Exiting Kafka due to fatal exception (kafka.Kafka$) | "
        "java.lang.RuntimeException: node ID not found"
    )


def test_log_excerpt_without_errors_shows_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "broker.log"
    log.write_text("one\ntwo\nthree\nfour\n")

    assert log_excerpt(log) == "two | three | four"


def test_log_excerpt_of_a_missing_log_says_so(tmp_path: Path) -> None:
    assert log_excerpt(tmp_path / "broker.log") == "(no log written)"


def test_cluster_id_is_sixteen_bytes_in_unpadded_base64url() -> None:
    cluster_id = new_cluster_id()

    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert "=" not in cluster_id and cluster_id != new_cluster_id()


def test_cluster_id_never_starts_like_a_command_line_option() -> None:
    # One id in 64 would start with "-" if drawn blindly.
    assert not any(new_cluster_id().startswith("-") for _ in range(2000))
