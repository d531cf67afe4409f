"""Avro schemas (the single source of truth for Kafka records) and their codec."""
