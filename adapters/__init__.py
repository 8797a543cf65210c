"""Everything that touches the world: HTTP API, PostgreSQL, CLI, settings, composition root."""
