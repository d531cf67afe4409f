"""Avro schemas (the single source of truth for Kafka records) and their codec."""

from runtime.native import install

install()  # before any compiled module is imported (see runtime.native)

from schemas.codec import (  # noqa: E402
    SCHEMA_HEADER,
    VERSION_HEADER,
    Codec,
    CodecError,
    DecodeError,
    EncodeError,
    SchemaError,
    decode,
    default_codec,
    encode,
)

__all__ = [
    "SCHEMA_HEADER",
    "VERSION_HEADER",
    "Codec",
    "CodecError",
    "DecodeError",
    "EncodeError",
    "SchemaError",
    "decode",
    "default_codec",
    "encode",
]
