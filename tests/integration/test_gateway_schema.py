"""schemathesis against the gateway's OpenAPI schema, on the real broker with real matchers.

Every operation gets generated requests, valid and invalid, each signed with a real key: no
answer is a 5xx, every status is one the schema documents, and every body matches its schema.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from confluent_kafka.admin import AdminClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.app import openapi_document
from runtime.signing import signed_headers
from runtime.topics import TopicNames, ensure_topics, topic_specs
from tests.integration.gateway_fixtures import KEYS_YAML, REGISTRY_YAML, GatewayCluster, secret_of

# A key with every scope, so that generated requests reach the matchers, not only the auth check.
ALL_SCOPES_KEY = (
    "  - {id: fuzz, secret: fuzz-secret-of-sixteen, account: fuzz, scopes: [read, trade, admin]}\n"
)
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def fuzzed_gateway(
    kafka_bootstrap: str, kafka_admin: AdminClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One gateway and both matchers for the whole module (each operation is its own test)."""
    folder = tmp_path_factory.mktemp("schema")
    prefix = f"test.schema.{uuid.uuid4().hex[:8]}."
    topics = TopicNames.with_prefix(prefix)
    ensure_topics(kafka_admin, topic_specs(topics, partitions=2, replies_partitions=2))
    (folder / "symbols.yaml").write_text(REGISTRY_YAML)
    (folder / "keys.yaml").write_text(KEYS_YAML + ALL_SCOPES_KEY)
    cluster = GatewayCluster(kafka_bootstrap, prefix, topics, folder / "symbols.yaml", folder / "keys.yaml")
    try:
        for partition in (0, 1):
            cluster.start_matcher(partition)
        yield cluster.start_gateway(
            gateway_rate_per_s=1e6, gateway_rate_burst=1_000_000, gateway_reply_wait_s=10.0
        )
    finally:
        cluster.stop()


# The document the running gateway serves (a test below holds the two equal).
schema = schemathesis.openapi.from_dict(openapi_document())


def _signed(case: Any, base_url: str) -> httpx.Response:
    """Send the generated request with a real signature over exactly the bytes sent."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    url = httpx.URL(kwargs["url"], params=kwargs.get("params") or {})
    body = b""
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        body = data if isinstance(data, bytes) else str(data).encode()
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "content-length"}
    if "json" in kwargs:
        headers["Content-Type"] = "application/json"
    headers.update(
        signed_headers(
            "fuzz",
            secret_of("fuzz"),
            timestamp_ms=time.time_ns() // 1_000_000,
            method=case.method,
            path=url.raw_path.split(b"?")[0].decode(),
            query=url.query.decode(),
            body=body,
        )
    )
    time.sleep(0.001)  # the next request signs another millisecond: never a replay of this one
    return httpx.request(case.method, url, content=body, headers=headers, timeout=30)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_answer_is_a_server_error_and_every_answer_matches_the_schema(
    case: Any, fuzzed_gateway: str
) -> None:
    response = _signed(case, fuzzed_gateway)

    assert response.status_code < 500, response.text
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )


def test_the_gateway_serves_the_tested_schema_naming_every_operation(fuzzed_gateway: str) -> None:
    document = httpx.get(f"{fuzzed_gateway}/openapi.json").json()

    assert document == openapi_document()
    operation_ids = {op["operationId"] for path in document["paths"].values() for op in path.values()}

    assert operation_ids == {
        "place_order", "cancel_order", "cancel_order_by_client_id", "cancel_all_orders", "amend_order",
        "get_order", "get_order_by_client_id", "list_open_orders", "list_symbols", "get_book",
        "add_symbol", "halt_symbol", "resume_symbol",
    }  # fmt: skip
