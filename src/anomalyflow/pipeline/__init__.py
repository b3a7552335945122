"""The retraining pipeline, one module per stage, each a plain typed function.

Nothing here knows Prefect or DVC: ``flows/`` wraps these functions in tasks, the CLI
runs them one at a time (as ``dvc.yaml``'s stages do), and :mod:`.stages` is the one
list from which the per-stage commands and ``dvc.yaml`` follow.
"""
