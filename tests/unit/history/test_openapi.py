"""The history API and the gateway share `/api/v1` behind one ingress: their documents must fit together."""

from __future__ import annotations

from gateway.app import openapi_document as gateway_document
from history.api import openapi_document as history_document


def test_the_history_paths_and_operation_ids_are_distinct_from_the_gateways() -> None:
    gateway, history = gateway_document(), history_document()

    assert not set(gateway["paths"]) & set(history["paths"])
    operations = [
        op["operationId"]
        for doc in (gateway, history)
        for path in doc["paths"].values()
        for op in path.values()
    ]
    assert len(operations) == len(set(operations))


def test_every_history_route_is_under_api_v1_and_documents_its_errors() -> None:
    for path, methods in history_document()["paths"].items():
        assert path.startswith("/api/v1/")
        for operation in methods.values():
            assert {"400", "422"} <= set(operation["responses"])
