"""Switch off the stack's usage reporting: AnomalyFlow must run offline and quietly.

Called by every entry point (CLI, flows, service) before those libraries are imported,
because some read their settings at import time. A user's explicit setting wins.
"""

from __future__ import annotations

import os

_SETTINGS = {
    "DO_NOT_TRACK": "1",  # Prefect SDK, Evidently UI and others honouring the convention
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "BENTOML_DO_NOT_TRACK": "true",  # BentoML accepts only "true"
    "GX_ANALYTICS_ENABLED": "false",
}


def disable_telemetry() -> None:
    """Set the opt-out variables unless the user set them already."""
    for name, value in _SETTINGS.items():
        os.environ.setdefault(name, value)
