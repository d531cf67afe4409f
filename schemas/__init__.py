"""Avro schemas (the single source of truth for Kafka records) and their codec."""

from schemas.codec import (
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
