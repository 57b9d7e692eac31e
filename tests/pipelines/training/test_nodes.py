"""Training nodes: purged time split, model fit, holdout metrics, reference features."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stock_ml.gold_schema import feature_columns
from stock_ml.pipelines.training.nodes import (
    data_lineage,
    evaluate_model,
    reference_features,
    register_model,
    split_by_date,
    train_model,
)

MODEL = {"C": 0.1, "max_iter": 500}
METRIC_NAMES = {
    "holdout_accuracy",
    "holdout_roc_auc",
    "holdout_f1",
    "holdout_log_loss",
    "holdout_rows",
    "baseline_always_up_accuracy",
}


def _trainable_dates(model_input: pd.DataFrame) -> np.ndarray:
    return np.sort(model_input.loc[model_input.is_trainable, "date"].unique())


def _separable_rows(n: int, seed: int, start: str = "2022-01-03") -> pd.DataFrame:
    """A model-input-shaped frame whose label is a deterministic function of one feature."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n)
    signal = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "symbol": "AAA",
            "date": dates,
            "signal": signal,
            "noise": rng.normal(size=n),
            "target_date": dates + pd.offsets.BDay(1),
            "forward_return": signal / 100.0,
            "label_up": (signal > 0).astype(float),
            "horizon": 1,
            "has_features": True,
            "is_trainable": True,
        }
    )
    return frame


# --- split_by_date ------------------------------------------------------------------------------


def test_split_holdout_is_exactly_the_last_n_trainable_dates(model_input):
    train, holdout = split_by_date(model_input, holdout_sessions=20)
    dates = _trainable_dates(model_input)
    assert len(dates) == 120 - 10 - 3  # 10 warm-up sessions, 3 without a realised label
    np.testing.assert_array_equal(np.sort(holdout["date"].unique()), dates[-20:])
    assert len(holdout) == 20 * 3
    assert holdout["is_trainable"].all()
    assert holdout.index.tolist() == list(range(len(holdout)))


def test_split_purges_train_rows_whose_label_reaches_the_holdout(model_input):
    train, holdout = split_by_date(model_input, holdout_sessions=20)
    holdout_start = holdout["date"].min()
    assert (train["date"] < holdout_start).all()
    assert (train["target_date"] < holdout_start).all()
    assert train["is_trainable"].all()
    # Horizon 3: the 3 sessions just before the holdout are purged, every earlier one is kept.
    dates = _trainable_dates(model_input)
    np.testing.assert_array_equal(np.sort(train["date"].unique()), dates[: -20 - 3])
    assert len(train) == (len(dates) - 23) * 3


def test_split_uses_only_trainable_rows(model_input):
    train, holdout = split_by_date(model_input, holdout_sessions=20)
    assert len(train) + len(holdout) == int(model_input.is_trainable.sum()) - 3 * 3
    assert train["label_up"].notna().all()
    assert holdout["label_up"].notna().all()
    assert train[feature_columns(train)].notna().all(axis=None)


def test_split_rejects_holdout_without_training_period(model_input):
    sessions = len(_trainable_dates(model_input))
    with pytest.raises(ValueError, match=rf"{sessions} trainable sessions cannot hold a"):
        split_by_date(model_input, holdout_sessions=sessions)


def test_split_rejects_holdout_that_purges_the_whole_training_period(model_input):
    sessions = len(_trainable_dates(model_input))
    # One trainable date before the holdout; its 3-session label ends inside the holdout.
    with pytest.raises(ValueError, match="No training rows left"):
        split_by_date(model_input, holdout_sessions=sessions - 1)


def test_split_rejects_an_empty_holdout(model_input):
    # dates[-0] would be dates[0]: everything held out, nothing trained
    with pytest.raises(ValueError, match="holdout_sessions must be ≥ 1"):
        split_by_date(model_input, holdout_sessions=0)


# --- train_model / evaluate_model ---------------------------------------------------------------


def test_train_model_fits_on_feature_columns_only(model_input):
    train, _ = split_by_date(model_input, holdout_sessions=20)
    estimator = train_model(train, MODEL)
    assert list(estimator.feature_names_in_) == feature_columns(model_input)
    for leaky in ["forward_return", "label_up", "target_date", "horizon", "is_trainable"]:
        assert leaky not in estimator.feature_names_in_
    classifier = estimator.named_steps["classify"]
    assert classifier.C == 0.1
    assert classifier.max_iter == 500
    assert sorted(classifier.classes_.tolist()) == [0, 1]


def test_evaluate_model_returns_kedro_mlflow_metrics(model_input):
    train, holdout = split_by_date(model_input, holdout_sessions=20)
    metrics = evaluate_model(train_model(train, MODEL), holdout, 0.5)
    assert set(metrics) == METRIC_NAMES
    for name, metric in metrics.items():
        assert set(metric) == {"value", "step"}, name
        assert type(metric["value"]) is float, name
        assert metric["step"] == 0, name
    assert 0.0 <= metrics["holdout_accuracy"]["value"] <= 1.0
    assert 0.0 <= metrics["holdout_roc_auc"]["value"] <= 1.0
    assert 0.0 <= metrics["holdout_f1"]["value"] <= 1.0
    assert metrics["holdout_log_loss"]["value"] > 0.0
    assert metrics["holdout_rows"]["value"] == float(len(holdout)) == 60.0
    assert metrics["baseline_always_up_accuracy"]["value"] == pytest.approx(
        holdout["label_up"].mean()
    )


def test_evaluate_model_accuracy_matches_thresholded_predictions(model_input):
    train, holdout = split_by_date(model_input, holdout_sessions=20)
    estimator = train_model(train, MODEL)
    proba = estimator.predict_proba(holdout[feature_columns(holdout)])[:, 1]
    expected = np.mean((proba >= 0.5).astype(int) == holdout["label_up"].astype(int))
    metrics = evaluate_model(estimator, holdout, 0.5)
    assert metrics["holdout_accuracy"]["value"] == pytest.approx(expected)
    # Column order of the holdout does not matter: features are selected by name.
    shuffled = holdout[list(reversed(holdout.columns))]
    assert evaluate_model(estimator, shuffled, 0.5) == metrics
    # The threshold comes from conf: a different one changes the predicted classes accordingly.
    strict = float(np.quantile(proba, 0.75))
    expected_strict = np.mean((proba >= strict).astype(int) == holdout["label_up"].astype(int))
    assert evaluate_model(estimator, holdout, strict)["holdout_accuracy"]["value"] == pytest.approx(
        expected_strict
    )


def test_model_learns_a_label_that_is_a_function_of_one_feature():
    rows = _separable_rows(400, seed=3)
    train, holdout = rows.iloc[:300], rows.iloc[300:].reset_index(drop=True)
    estimator = train_model(train, MODEL)
    assert list(estimator.feature_names_in_) == ["signal", "noise"]
    metrics = evaluate_model(estimator, holdout, 0.5)
    assert metrics["holdout_accuracy"]["value"] > 0.9
    assert metrics["holdout_roc_auc"]["value"] > 0.95
    assert metrics["holdout_accuracy"]["value"] > metrics["baseline_always_up_accuracy"]["value"]
    assert metrics["baseline_always_up_accuracy"]["value"] == pytest.approx(
        (holdout["signal"] > 0).mean()
    )


def test_evaluate_model_roc_auc_is_nan_for_a_single_class_holdout():
    rows = _separable_rows(200, seed=4)
    estimator = train_model(rows, MODEL)
    all_up = rows[rows["label_up"] == 1.0].reset_index(drop=True)
    metrics = evaluate_model(estimator, all_up, 0.5)
    assert math.isnan(metrics["holdout_roc_auc"]["value"])
    assert metrics["baseline_always_up_accuracy"]["value"] == 1.0
    assert metrics["holdout_rows"]["value"] == float(len(all_up))


# --- register_model / reference_features --------------------------------------------------------


def test_register_model_hands_over_the_same_estimator(model_input):
    train, _ = split_by_date(model_input, holdout_sessions=20)
    estimator = train_model(train, MODEL)
    assert register_model(estimator) is estimator


def test_reference_features_keeps_keys_and_features_only(model_input):
    train, _ = split_by_date(model_input, holdout_sessions=20)
    reference = reference_features(train.iloc[::-1])
    assert list(reference.columns) == ["symbol", "date", *feature_columns(model_input)]
    assert len(reference) == len(train)
    assert reference.index.tolist() == list(range(len(train)))
    np.testing.assert_array_equal(reference["roc5"], train["roc5"].iloc[::-1])


def test_data_lineage_names_the_gold_build_and_its_features(model_input):
    lineage = data_lineage(model_input)
    assert lineage["dataset_run_id"] == "unit-test-run"
    assert lineage["label_run_id"] == "unit-test-run"
    assert set(model_input["feature_schema_hash"]) == {lineage["feature_schema_hash"]}
    assert lineage["features"] == feature_columns(model_input)
    assert "roc5_csrank" in lineage["features"]
    assert lineage["rows"] == len(model_input)


def test_data_lineage_refuses_a_mix_of_gold_builds(model_input):
    mixed = model_input.copy()
    mixed.loc[mixed.index[:5], "dataset_run_id"] = "another-build"
    with pytest.raises(ValueError, match="mixes builds: dataset_run_id"):
        data_lineage(mixed)
