"""The bus: NATS JetStream (nats_bus) and the embedded nats-server started when no URL is set."""
