"""`geo-engine demo`: a deterministic sample city (Paris), a simulated day of phone fixes sent
through the real HTTP API, a summary table and a self-contained HTML report."""
