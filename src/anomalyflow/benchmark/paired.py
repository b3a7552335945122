"""AnomalyFlow against another method, data set by data set: wins, losses and a p-value."""

from __future__ import annotations

from typing import Any

import pandas as pd
from scipy.stats import wilcoxon


def paired(ours: pd.Series, theirs: pd.Series) -> dict[str, Any]:
    """AnomalyFlow's wins and losses per data set, and a Wilcoxon signed-rank p-value.

    Ties (to 1e-12) count as neither; below five untied sets there is no p-value (NaN).
    """
    difference = (ours - theirs).dropna()
    nonzero = difference[difference.abs() > 1e-12]
    p_value = float(wilcoxon(nonzero).pvalue) if len(nonzero) >= 5 else float("nan")
    return {
        "anomalyflow_wins": int((nonzero > 0).sum()),
        "anomalyflow_losses": int((nonzero < 0).sum()),
        "wilcoxon_p": p_value,
    }
