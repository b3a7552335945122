"""Fitting the scorer's linear half: L2 logistic regression on the few labels.

Like the network, it treats unlabeled rows as negatives; unlike it, the fit is convex,
so it needs no epochs or early stopping, and a strong penalty (small ``c``) keeps a
handful of labels from deciding every coefficient.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from anomalyflow.data.scaling import RobustScaler
from anomalyflow.models.linear import LinearScore


def fit_linear_score(
    x: np.ndarray,
    reconstruction: np.ndarray,
    network: np.ndarray,
    y: np.ndarray,
    c: float,
) -> LinearScore:
    """A class-balanced logistic regression of ``y`` on scaled rows and their score.

    Args:
        x: scaled rows ``(rows, features)``.
        reconstruction: the label-free score per row ``(rows,)`` (zeros without a backbone).
        network: the fine-tuned network's logit per row ``(rows,)``: with the linear
            logit on the same rows, it sets the scales the two are summed on.
        y: 1 for labeled anomalies, 0 for the rest.
        c: inverse L2 strength, as in scikit-learn.
    """
    inputs = np.column_stack([x, reconstruction]).astype(np.float32)
    fitted = logistic_regression(c).fit(inputs, y)
    model = LinearScore(x.shape[1])
    with torch.no_grad():
        model.linear.weight.copy_(torch.from_numpy(fitted.coef_).float())
        model.linear.bias.copy_(torch.from_numpy(fitted.intercept_).float())
        linear = inputs @ fitted.coef_[0] + fitted.intercept_[0]
        model.scales.copy_(torch.tensor([*centre_spread(network), *centre_spread(linear)]))
    return model


def logistic_regression(c: float) -> LogisticRegression:
    """The unfitted, class-balanced L2 model (also the benchmark's linear peer)."""
    return LogisticRegression(C=c, class_weight="balanced", max_iter=1000)


def centre_spread(scores: np.ndarray) -> tuple[float, float]:
    """Median and robust spread, by the same rule the feature scaler uses."""
    scaler = RobustScaler().fit(scores[:, None])
    assert scaler.center_ is not None and scaler.spread_ is not None
    return float(scaler.center_[0]), float(scaler.spread_[0])
