"""Application services: they orchestrate the core and speak to storage through ports."""
