"""What every service shares: settings, Kafka wrappers, the local broker, metrics, health, logging."""

from runtime.native import install

install()  # before any compiled module is imported (see runtime.native)
