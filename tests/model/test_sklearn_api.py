"""The detector behaves like its scikit-learn neighbours: defaults, keywords, tables,
clone, Pipeline, GridSearchCV, and the same refusals as the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from anomalyflow import AnomalyDetector
from anomalyflow.data.loaders import read_table
from anomalyflow.data.schema import InputError, Schema
from anomalyflow.detector import DetectorSettings
from anomalyflow.params import load_params
from tests.conftest import make_blobs

REPO = Path(__file__).resolve().parents[2]
TINY: dict[str, Any] = {
    "hidden_dim": 16,
    "embedding_dim": 8,
    "pretrain_epochs": 2,
    "finetune_epochs": 2,
    "verbose": False,
    "device": "cpu",
}
COLUMNS = ["amount", "hour", "distance", "velocity", "ratio", "age"]

# Checks that pass y as class labels 0, 1, 2 (or a continuous y): here y marks labeled
# anomalies with 1 and everything else with 0, and any other value is refused, as the
# command line refuses it. The label-free detector ignores y and runs each of them.
Y_NOT_ZERO_ONE = "passes y values other than 0/1, which mark labeled anomalies"
LABELED_EXPECTED_FAILURES = {
    name: Y_NOT_ZERO_ONE
    for name in (
        "check_fit_score_takes_y",
        "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self",
        "check_readonly_memmap_input",
        "check_positive_only_tag_during_fit",
        "check_estimators_dtypes",
        "check_f_contiguous_array_estimator",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_fit2d_1feature",
        "check_dict_unchanged",
        "check_fit2d_predict1d",
    )
} | {"check_fit2d_1sample": "y = [1]: fine-tuning needs unlabeled (0) rows beside the 1s"}
SHARED_EXPECTED_FAILURES = {
    # Our refusal names the input in the command line's one-line form ("X: has 1
    # features, the detector was fitted on 4"), not in scikit-learn's wording.
    "check_n_features_in_after_fitting": "the refusal uses our wording, not scikit-learn's",
    # A dict inside an object array is refused as InputError (a ValueError naming X),
    # like every other non-numeric input, rather than numpy's TypeError.
    "check_dtype_object": "non-numeric input is refused as InputError (ValueError)",
}


def _expected_failures(detector: AnomalyDetector) -> dict[str, str]:
    if detector.label_free:
        return SHARED_EXPECTED_FAILURES
    return LABELED_EXPECTED_FAILURES | SHARED_EXPECTED_FAILURES


@parametrize_with_checks(
    [AnomalyDetector(label_free=True, **TINY), AnomalyDetector(**TINY)],
    expected_failed_checks=_expected_failures,
)
def test_scikit_learn_estimator_checks(estimator: AnomalyDetector, check: Any) -> None:
    check(estimator)


def _frame(rows: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    x, y = make_blobs(rows=rows, seed=seed)
    labeled = np.zeros_like(y)
    labeled[np.flatnonzero(y == 1)[::3]] = 1  # a third of the anomalies confirmed
    return pd.DataFrame(x, columns=COLUMNS), labeled


def test_defaults_are_those_of_params_yaml() -> None:
    params = load_params(REPO / "params.yaml")
    assert AnomalyDetector().resolved_settings() == DetectorSettings.from_params(params)
    assert AnomalyDetector().get_params()["settings"] is None


def test_a_keyword_changes_its_key_alone_and_is_checked_like_params_yaml() -> None:
    default = AnomalyDetector().resolved_settings()
    turned = AnomalyDetector(hidden_dim=32, threshold_method="best_f1").resolved_settings()
    assert turned.model.hidden_dim == 32 and turned.threshold.method == "best_f1"
    assert turned.pretrain == default.pretrain and turned.runtime == default.runtime
    x, y = _frame(rows=100)
    with pytest.raises(ValueError, match="hidden_dim=0"):
        AnomalyDetector(hidden_dim=0).fit(x, y)


def test_a_table_scores_as_its_numpy_array_does() -> None:
    x, y = _frame()
    from_frame = AnomalyDetector(**TINY).fit(x, y)
    from_array = AnomalyDetector(**TINY).fit(x.to_numpy(), y)
    np.testing.assert_array_equal(from_frame.decision_function(x), from_array.decision_function(x))
    arrow = pa.Table.from_pandas(x)
    np.testing.assert_array_equal(
        from_frame.decision_function(arrow), from_frame.decision_function(x.to_numpy())
    )
    assert list(from_frame.feature_names_in_) == COLUMNS
    assert set(np.unique(from_frame.predict(x))) <= {0, 1}
    assert (
        from_frame.predict(x).sum()
        == (from_frame.decision_function(x) >= from_frame.threshold_).sum()
    )


@pytest.mark.parametrize(
    ("change", "column"),
    [
        (lambda f: f[[*COLUMNS[1:], COLUMNS[0]]], "hour"),  # reordered: the first misplaced
        (lambda f: f.drop(columns="velocity"), "velocity"),  # missing
        (lambda f: f.rename(columns={"age": "tenure"}), "age"),  # renamed: the fitted one missing
    ],
)
def test_columns_not_as_fitted_are_refused_naming_the_column(
    change: Any, column: str, tmp_path: Path
) -> None:
    x, y = _frame(rows=200)
    detector = AnomalyDetector(**TINY).fit(x, y)
    detector.save(tmp_path / "model")
    for model in (detector, AnomalyDetector.load(tmp_path / "model")):
        for method in (model.decision_function, model.predict):
            with pytest.raises(InputError) as caught:
                method(change(x))
            assert caught.value.column == column


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39])
def test_bad_values_are_refused_as_the_command_line_refuses_them(
    bad: float, tmp_path: Path
) -> None:
    x, y = _frame(rows=60)
    x.loc[7, "ratio"] = bad
    csv = tmp_path / "batch.csv"
    x.to_csv(csv, index=False)
    with pytest.raises(InputError) as cli:
        read_table(csv, Schema(tuple(COLUMNS)))
    for given in (x, x.to_numpy()):
        with pytest.raises(InputError) as api:
            AnomalyDetector(**TINY).fit(given, y)
        assert api.value.problem == cli.value.problem
    assert api.value.column == "x4"  # an array has no names: its columns are x0, x1, ...


def test_clone_pipeline_and_grid_search_over_two_settings() -> None:
    x, y = _frame(rows=400)
    detector = AnomalyDetector(**TINY)
    copy = clone(detector.set_params(alert_rate=0.05))
    assert copy.get_params() == detector.get_params() and copy is not detector
    search = GridSearchCV(
        Pipeline([("detector", detector)]),
        {"detector__hidden_dim": [8, 16]},
        scoring="average_precision",  # ranks by decision_function
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    )
    search.fit(x, y)
    assert search.best_params_["detector__hidden_dim"] in (8, 16)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_score_ > 5 * y.mean()  # labeled anomalies rank far above chance
    best = search.best_estimator_.named_steps["detector"]
    assert best.resolved_settings().threshold.alert_rate == 0.05
    assert search.predict(x).mean() <= 0.05


def test_label_free_ignores_the_labels_and_survives_a_save(tmp_path: Path) -> None:
    x, y = _frame(rows=300)
    free = AnomalyDetector(label_free=True, **TINY).fit(x, y)
    unlabeled = AnomalyDetector(**TINY).fit(x)
    assert free.scorer_ is None
    np.testing.assert_array_equal(free.decision_function(x), unlabeled.decision_function(x))
    free.save(tmp_path / "model")
    loaded = AnomalyDetector.load(tmp_path / "model")
    assert loaded.label_free and loaded.resolved_settings() == free.resolved_settings()
    assert clone(loaded).get_params()["label_free"] is True
