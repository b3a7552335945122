"""Prefect flows: each a list of calls to :mod:`anomalyflow.pipeline` stages, plus names,
artifacts, the approval pause and schedules."""
