"""PostgreSQL through asyncpg: connection, embedded server, migrations, port implementations."""
