"""The matcher: a pure matching core and the Kafka service that runs one per partition."""
