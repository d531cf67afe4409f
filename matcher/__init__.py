"""The matcher: a pure matching core and the Kafka service that runs one per partition."""

from runtime.native import install

install()  # before any compiled module is imported (see runtime.native)
