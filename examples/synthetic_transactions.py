"""AnomalyFlow from Python, on the built-in card-transaction data.

Run it from the repository root: ``.venv/bin/python examples/synthetic_transactions.py``
(under a minute on a laptop CPU). Each step is a block you could paste into a notebook
cell: data, fit, score, threshold, a small grid search, save and load.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, recall_score
from sklearn.model_selection import GridSearchCV

from anomalyflow import AnomalyDetector
from anomalyflow.data import synthetic
from anomalyflow.evaluation.threshold import explain_threshold
from anomalyflow.params import SyntheticParams


def main(history_rows: int = 10_000, recent_rows: int = 5_000, epochs: int = 10) -> float:
    """Walk through the detector on generated transactions; returns the holdout's AUPRC."""
    # Data: unlabeled history, a recent window where half the frauds were confirmed, and
    # a later, fully labeled holdout. Confirmed frauds are 1; everything else is 0.
    data = synthetic.generate(
        SyntheticParams(
            history_rows=history_rows, recent_rows=recent_rows, holdout_rows=recent_rows
        )
    )
    features = list(synthetic.FEATURES)
    rows = pd.concat([data.history, data.recent])
    X, y = rows[features], rows[synthetic.LABEL].fillna(0).astype(int)
    test, truth = data.holdout[features], data.holdout[synthetic.LABEL]

    # Fit: pretraining on every row, fine-tuning on the confirmed frauds. The keywords
    # override params.yaml's defaults one key at a time.
    detector = AnomalyDetector(pretrain_epochs=epochs, finetune_epochs=epochs, verbose=False)
    detector.fit(X, y)
    scores = detector.decision_function(test)  # one per row, higher = more anomalous
    auprc = average_precision_score(truth, scores)
    print(f"holdout AUPRC {auprc:.3f} (fraud rate {truth.mean():.2%})")

    # Threshold: 1% of rows flagged by default. What that rule allows; then twice the
    # alerts, refitted on the same rows without retraining the network.
    for line in explain_threshold(detector.resolved_settings().threshold, truth.mean()).lines():
        print(line)
    print(f"recall at 1% of rows flagged: {recall_score(truth, detector.predict(test)):.2f}")
    detector.set_params(alert_rate=0.02).refit_threshold(X, None)
    print(f"recall at 2% of rows flagged: {recall_score(truth, detector.predict(test)):.2f}")

    # A grid search like any scikit-learn estimator's. Few rows carry labels, so each
    # setting is judged on the later, fully labeled holdout, as the pipeline's gate does:
    # one split, train on history and recent rows, score the holdout by average precision.
    X_all, y_all = pd.concat([X, test]), pd.concat([y, truth])
    holdout_split = [(np.arange(len(X)), np.arange(len(X), len(X_all)))]
    search = GridSearchCV(
        AnomalyDetector(pretrain_epochs=epochs, finetune_epochs=epochs, verbose=False),
        {"hidden_dim": [64, 256]},
        scoring="average_precision",  # ranks rows by decision_function
        cv=holdout_split,
        refit=False,  # never train on the holdout
    )
    search.fit(X_all, y_all)
    print(f"grid search: best {search.best_params_} (holdout AUPRC {search.best_score_:.3f})")

    # Save and load: safetensors and JSON, no pickle; the columns are checked on scoring.
    with tempfile.TemporaryDirectory() as folder:
        detector.save(Path(folder) / "detector")
        loaded = AnomalyDetector.load(Path(folder) / "detector")
        assert (loaded.decision_function(test) == detector.decision_function(test)).all()
    return float(auprc)


if __name__ == "__main__":
    main()
