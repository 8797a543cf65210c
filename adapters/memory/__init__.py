"""In-memory implementations of the core's ports: for unit tests and the contract suite."""
