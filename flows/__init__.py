"""Prefect flows: thin wiring of :mod:`anomalyflow.steps` with retries and artifacts."""
