"""What every service shares: settings, Kafka wrappers, the local broker, metrics, health, logging."""
