"""Monitoring nodes: matured accuracy, feature and prediction drift, the verdict, the history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression

from stock_ml.gold_schema import feature_columns
from stock_ml.models import RegistryState, ServingModel
from stock_ml.pipelines.monitoring.nodes import (
    DRIFT_COLUMNS,
    champion_reference,
    collect_drift,
    collect_retrain_decisions,
    decide_retraining,
    drift_report,
    feature_drift,
    matured_performance,
    plot_monitoring_history,
    population_stability_index,
)
from stock_ml.runs import run_partition_key

DAY1 = pd.Timestamp("2024-03-04")
DAY2 = pd.Timestamp("2024-03-05")
DAY3 = pd.Timestamp("2024-03-06")


def _predictions(as_of, rows, version=1, name="m", role="serving"):
    """One prediction-log partition: rows are (symbol, score, predicted_up)."""
    return pd.DataFrame(
        {
            "target_prediction_date": as_of + pd.offsets.BDay(2),
            "symbol": [r[0] for r in rows],
            "as_of_date": as_of,
            "score": [r[1] for r in rows],
            "predicted_up": [r[2] for r in rows],
            "model_name": name,
            "model_alias": "champion",
            "model_version": version,
            "mlflow_run_id": f"run-{version}",
            "role": role,
        }
    )


def _labels(rows):
    """Gold labels: rows are (symbol, date, label_up) with NaN for unrealised labels."""
    frame = pd.DataFrame(rows, columns=["symbol", "date", "label_up"])
    frame["forward_return"] = np.where(frame["label_up"] == 1.0, 0.01, -0.01)
    frame.loc[frame["label_up"].isna(), "forward_return"] = np.nan
    frame["target_date"] = frame["date"] + pd.offsets.BDay(2)
    frame["horizon"] = 2
    return frame


def _partitions(*frames):
    return {f"as_of_date={f['as_of_date'].iloc[0]:%Y-%m-%d}": (lambda f=f: f) for f in frames}


# --- matured_performance ------------------------------------------------------------------------


def test_matured_performance_counts_only_realised_labels():
    # 3 predictions on DAY1: AAA right, BBB wrong, CCC not matured yet -> 2 matured, 1 correct.
    predictions = _partitions(
        _predictions(DAY1, [("AAA", 0.8, 1), ("BBB", 0.7, 1), ("CCC", 0.2, 0)])
    )
    labels = _labels([("AAA", DAY1, 1.0), ("BBB", DAY1, 0.0), ("CCC", DAY1, np.nan)])
    performance = matured_performance(predictions, labels)
    assert len(performance) == 1
    row = performance.iloc[0]
    assert row["as_of_date"] == DAY1
    assert row["model_name"] == "m"
    assert row["model_version"] == 1
    assert row["matured_predictions"] == 2
    assert row["correct"] == 1
    assert row["accuracy"] == pytest.approx(0.5)
    assert row["mean_score"] == pytest.approx((0.8 + 0.7) / 2)  # CCC's 0.2 is not matured


def test_matured_performance_groups_by_date_and_model_version():
    predictions = _partitions(
        _predictions(DAY2, [("AAA", 0.9, 1), ("BBB", 0.1, 0)], version=2),
        _predictions(DAY1, [("AAA", 0.6, 1), ("BBB", 0.4, 0)], version=1),
        _predictions(DAY3, [("AAA", 0.6, 1), ("BBB", 0.4, 0)], version=2),  # nothing matured
    )
    labels = _labels(
        [
            ("AAA", DAY1, 0.0),
            ("BBB", DAY1, 0.0),
            ("AAA", DAY2, 1.0),
            ("BBB", DAY2, 0.0),
            ("AAA", DAY3, np.nan),
            ("BBB", DAY3, np.nan),
        ]
    )
    performance = matured_performance(predictions, labels)
    assert performance["as_of_date"].tolist() == [DAY1, DAY2]
    assert performance["model_version"].tolist() == [1, 2]
    assert performance["matured_predictions"].tolist() == [2, 2]
    assert performance["correct"].tolist() == [1, 2]
    assert performance["accuracy"].tolist() == [0.5, 1.0]


def test_matured_performance_ignores_predictions_without_a_label_row():
    predictions = _partitions(_predictions(DAY1, [("AAA", 0.8, 1), ("ZZZ", 0.8, 1)]))
    labels = _labels([("AAA", DAY1, 0.0)])
    performance = matured_performance(predictions, labels)
    assert performance["matured_predictions"].tolist() == [1]
    assert performance["accuracy"].tolist() == [0.0]


# --- population_stability_index -----------------------------------------------------------------


def test_psi_of_identical_distributions_is_about_zero():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    assert population_stability_index(reference, reference.copy(), 10) == pytest.approx(0.0)
    same_law = rng.normal(size=5000)
    assert 0.0 <= population_stability_index(reference, same_law, 10) < 0.01


def test_psi_of_a_shifted_distribution_is_large():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=5000)
    assert population_stability_index(reference, rng.normal(1.0, 1.0, 5000), 10) > 0.25
    small = population_stability_index(reference, rng.normal(0.1, 1.0, 5000), 10)
    large = population_stability_index(reference, rng.normal(1.0, 1.0, 5000), 10)
    assert small < large


def test_psi_counts_values_outside_reference_range_in_outer_bins():
    reference = np.arange(100, dtype=float)  # 10 decile bins of 10 values + 2 empty outer bins
    below = population_stability_index(reference, np.full(50, -1e6), 10)
    above = population_stability_index(reference, np.full(50, 1e6), 10)
    # Everything lands in one outer bin (reference share floored to 1e-6); the 10 deciles empty.
    expected = (1 - 1e-6) * np.log(1 / 1e-6) + 10 * (1e-6 - 0.1) * np.log(1e-6 / 0.1)
    assert below == pytest.approx(expected)
    assert above == pytest.approx(expected), "out-of-range drift counts the same on both sides"
    # Half the current mass beyond each end: the two outer bins hold all of it.
    split = np.r_[np.full(50, -5.0), np.full(50, 500.0)]
    expected_split = 2 * (0.5 - 1e-6) * np.log(0.5 / 1e-6) + 10 * (1e-6 - 0.1) * np.log(1e-6 / 0.1)
    assert population_stability_index(reference, split, 10) == pytest.approx(expected_split)
    # A value equal to the reference minimum is inside the range, not in the outer bin.
    assert population_stability_index(reference, np.zeros(10), 10) == pytest.approx(
        (1 - 0.1) * np.log(1 / 0.1) + 9 * (1e-6 - 0.1) * np.log(1e-6 / 0.1)
    )


def test_psi_detects_drift_from_a_constant_reference():
    reference = np.zeros(100)
    assert population_stability_index(reference, np.full(100, 5.0), 10) > 0.25
    assert population_stability_index(reference, np.full(100, -5.0), 10) > 0.25
    assert population_stability_index(reference, np.zeros(100), 10) == pytest.approx(0.0)
    # heavily tied: 95 zeros and 5 ones, current all ones
    tied = np.r_[np.zeros(95), np.ones(5)]
    assert population_stability_index(tied, np.ones(100), 10) > 0.25


# --- feature_drift ------------------------------------------------------------------------------


@pytest.fixture
def drift_inputs():
    rng = np.random.default_rng(5)
    ref_dates = pd.bdate_range("2024-01-01", periods=100)
    reference = pd.DataFrame(
        {
            "symbol": "AAA",
            "date": ref_dates,
            "stable": rng.normal(size=100),
            "shifted": rng.normal(size=100),
        }
    )
    dates = pd.bdate_range("2024-06-03", periods=30)
    # Session 29 has no features, so window_sessions=20 covers sessions 9..28.
    in_window = np.arange(30) >= 9
    model_input = pd.DataFrame(
        {
            "symbol": "AAA",
            "date": dates,
            "stable": rng.normal(size=30),
            # Shifted by 3 sd only inside the window; outside it, far away the other way.
            "shifted": np.where(in_window, rng.normal(3.0, 1.0, 30), -50.0),
            "target_date": pd.NaT,
            "forward_return": np.nan,
            "label_up": np.nan,
            "horizon": 2,
            "has_features": True,
            "is_trainable": False,
        }
    )
    # The last session has no complete features (e.g. a NaN) and is not part of the window.
    model_input.loc[29, ["stable", "shifted"]] = [np.nan, np.nan]
    model_input.loc[29, "has_features"] = False
    return reference, model_input, dates


def test_feature_drift_one_row_per_feature_sorted_by_psi(drift_inputs):
    reference, model_input, dates = drift_inputs
    drift = feature_drift(reference, model_input, window_sessions=20, bins=10)
    assert drift["name"].tolist() == ["shifted", "stable"]
    assert set(drift["kind"]) == {"feature"}
    assert drift["psi"].is_monotonic_decreasing
    shifted = drift.set_index("name").loc["shifted"]
    assert shifted["psi"] > 0.25
    assert shifted["ks_statistic"] > 0.7 and shifted["ks_pvalue"] < 1e-6


def test_feature_drift_compares_the_last_window_sessions_with_features(drift_inputs):
    reference, model_input, dates = drift_inputs
    drift = feature_drift(reference, model_input, window_sessions=20, bins=10).set_index("name")
    # Sessions 9..28 have features (29 does not): 20 rows per feature, reference keeps all 100.
    assert drift["current_rows"].tolist() == [20, 20]
    assert drift["reference_rows"].tolist() == [100, 100]
    assert (drift["current_from"] == dates[9]).all()
    assert (drift["current_to"] == dates[28]).all()
    # Same computation by hand for the shifted feature.
    current = model_input.loc[9:28, "shifted"].to_numpy()
    expected = population_stability_index(reference["shifted"].to_numpy(), current, 10)
    assert drift.loc["shifted", "psi"] == pytest.approx(expected)
    test = ks_2samp(reference["shifted"].to_numpy(), current)
    assert drift.loc["shifted", "ks_statistic"] == pytest.approx(test.statistic)
    assert drift.loc["shifted", "ks_pvalue"] == pytest.approx(test.pvalue)


def test_feature_drift_ignores_reference_nans(drift_inputs):
    reference, model_input, _ = drift_inputs
    reference = reference.copy()
    reference.loc[:9, "stable"] = np.nan
    drift = feature_drift(reference, model_input, window_sessions=20, bins=10).set_index("name")
    assert drift.loc["stable", "reference_rows"] == 90
    assert np.isfinite(drift["psi"]).all()


def test_matured_performance_separates_serving_and_shadow_and_ranks():
    predictions = _partitions(
        pd.concat(
            [
                _predictions(DAY1, [("AAA", 0.9, 1), ("BBB", 0.5, 1), ("CCC", 0.1, 0)]),
                _predictions(
                    DAY1, [("AAA", 0.1, 0), ("BBB", 0.5, 1), ("CCC", 0.9, 1)], 2, role="shadow"
                ),
            ]
        )
    )
    labels = _labels([("AAA", DAY1, 1.0), ("BBB", DAY1, 1.0), ("CCC", DAY1, 0.0)])
    labels["forward_return"] = [0.03, 0.01, -0.02]
    performance = matured_performance(predictions, labels).set_index("role")
    assert performance.loc["serving", "accuracy"] == 1.0
    assert performance.loc["shadow", "accuracy"] == pytest.approx(1 / 3)
    assert performance.loc["serving", "rank_ic"] == pytest.approx(1.0)
    assert performance.loc["shadow", "rank_ic"] == pytest.approx(-1.0)
    assert performance.loc["shadow", "model_version"] == 2


def test_matured_performance_of_an_empty_log_is_an_empty_table():
    performance = matured_performance({}, _labels([("AAA", DAY1, 1.0)]))
    assert performance.empty and "rank_ic" in performance.columns


# --- decide_retraining --------------------------------------------------------------------------

THRESHOLDS = {
    "accuracy_floor": 0.5,
    "rolling_sessions": 2,
    "breach_runs": 2,
    "psi_threshold": 0.25,
    "max_drifted_features": 1,
    "prediction_psi_threshold": 0.25,
    "max_model_age_days": 30,
    "min_days_between_trainings": 5,
}
RUN = {"id": "daily-1", "date": "2024-03-20"}


def _performance(accuracies, version=1, role="serving"):
    days = pd.bdate_range("2024-03-01", periods=len(accuracies))
    return pd.DataFrame(
        {
            "as_of_date": days,
            "model_name": "m",
            "model_version": version,
            "role": role,
            "matured_predictions": 10,
            "correct": [round(a * 10) for a in accuracies],
            "mean_score": 0.5,
            "accuracy": accuracies,
            "rank_ic": [a - 0.5 for a in accuracies],
        }
    )


def _registry(champion=1, created="2024-03-01T00:00:00+00:00", trained=None, newer=None):
    """Version 1 (champion unless None); ``newer``: a version 2 trained on that date."""
    aliases = {"champion": champion} if champion else {}
    tags = {1: {"training_run_date": trained} if trained else {}}
    created_at = {1: created}
    if newer:
        tags[2] = {"training_run_date": newer}
        created_at[2] = "2026-11-23T10:00:00+00:00"  # registered long after: data time counts
    return RegistryState("m", aliases, tags, created_at)


def _drift(psi=(0.3, 0.1, 0.0), score_psi=0.05):
    features = pd.DataFrame({"kind": "feature", "name": ["a", "b", "c"], "psi": list(psi)})
    score = pd.DataFrame({"kind": ["prediction"], "name": ["score"], "psi": [score_psi]})
    return pd.concat([features, score], ignore_index=True)


def _health(status=("fresh", "fresh"), run=RUN):
    frame = pd.DataFrame({"symbol": ["AAA", "BBB"], "status": list(status)})
    return {run_partition_key(run): lambda: frame}


def _decide(performance, drift=None, registry=None, health=None, **overrides):
    return decide_retraining(
        performance,
        _drift() if drift is None else drift,
        registry or _registry(),
        _health() if health is None else health,
        {**THRESHOLDS, **overrides},
        RUN,
    )


def test_a_healthy_champion_needs_no_retraining():
    decision = _decide(_performance([0.6, 0.4, 0.7, 0.6]))
    assert decision == {
        "model_name": "m",
        "retrain_required": False,
        "reasons": [],
        "warnings": [],
        "checks": {
            "champion_version": 1,
            "rolling_accuracy": 0.65,
            "model_age_days": 19,
            "drifted_features": 1,
            "prediction_psi": 0.05,
            "stale_symbols": [],
        },
        "thresholds": THRESHOLDS,
        "run_id": "daily-1",
        "run_date": "2024-03-20",
    }


def test_each_reason_alone_requires_retraining():
    cases = {
        "champion_missing": {"registry": _registry(champion=None)},
        # rolling-2 accuracy 0.45, 0.4 on the last two dates (the shadow's good run is ignored)
        "performance_below_floor": {
            "performance": pd.concat(
                [_performance([0.6, 0.5, 0.4, 0.4]), _performance([0.9] * 4, 2, "shadow")]
            )
        },
        "feature_drift": {"drift": _drift(psi=(0.3, 0.4, 0.0))},
        "prediction_drift": {"drift": _drift(score_psi=0.4)},
        "stale_model": {"registry": _registry(created="2024-01-01T00:00:00+00:00")},
    }
    for reason, case in cases.items():
        performance = case.pop("performance", _performance([0.6] * 4))
        decision = _decide(performance, **case)
        assert decision["retrain_required"], reason
        assert [r.split(":")[0] for r in decision["reasons"]] == [reason]


def test_model_age_is_counted_from_the_training_run_date_when_tagged():
    # registered on 2024-03-01 but trained on data of 2024-01-02: 78 days old in data time
    decision = _decide(_performance([0.6] * 4), registry=_registry(trained="2024-01-02"))
    assert decision["checks"]["model_age_days"] == 78
    assert [r.split(":")[0] for r in decision["reasons"]] == ["stale_model"]


def test_a_recent_training_suppresses_the_request_but_keeps_the_reasons():
    drifting = _drift(psi=(0.3, 0.4, 0.0))
    recent = _decide(_performance([0.6] * 4), drifting, _registry(newer="2024-03-17"))
    assert recent["retrain_required"] is False
    assert [r.split(":")[0] for r in recent["reasons"]] == ["feature_drift"]
    assert recent["checks"]["suppressed_by"] == "cooldown: v2 was trained 3 days ago (< 5)"
    older = _decide(_performance([0.6] * 4), drifting, _registry(newer="2024-03-15"))
    assert older["retrain_required"] is True and "suppressed_by" not in older["checks"]
    # no champion is never suppressed
    missing = _registry(champion=None, newer="2024-03-19")
    assert _decide(_performance([0.6] * 4), registry=missing)["retrain_required"] is True


def test_stale_data_is_a_warning_not_a_reason():
    decision = _decide(_performance([0.6] * 4), health=_health(("stale", "missing")))
    assert decision["retrain_required"] is False and decision["reasons"] == []
    assert decision["checks"]["stale_symbols"] == ["AAA", "BBB"]
    assert decision["warnings"] == ["stale_data: 2 symbols stale or missing: AAA, BBB"]
    other_run = _health(run={"id": "another", "date": "2024-03-19"})
    decision = _decide(_performance([0.6] * 4), health=other_run)
    assert decision["checks"]["stale_symbols"] is None
    assert decision["warnings"] == ["no data health record for this run: freshness unknown"]


def test_one_bad_date_is_not_a_breach():
    decision = _decide(_performance([0.6, 0.6, 0.6, 0.2]))
    assert not decision["retrain_required"], "rolling 0.6, 0.4: only the last date is below"


# --- drift_report -------------------------------------------------------------------------------


@pytest.fixture
def champion(model_input) -> ServingModel:
    """A model trained on the first 60 sessions, tagged with its window like a registered one."""
    dates = pd.DatetimeIndex(np.sort(model_input["date"].unique()))
    window = model_input[model_input["is_trainable"] & (model_input["date"] <= dates[59])]
    estimator = LogisticRegression(max_iter=500)
    estimator.fit(window[feature_columns(model_input)], window["label_up"].astype(int))
    tags = {"train_start": f"{dates[0]:%Y-%m-%d}", "train_end": f"{dates[59]:%Y-%m-%d}"}
    return ServingModel(estimator, "m", "champion", 3, "run-3", tags)


def test_the_reference_is_the_champions_own_training_rows(model_input, champion):
    reference = champion_reference(model_input, champion)
    dates = pd.DatetimeIndex(np.sort(model_input["date"].unique()))
    first_trainable = model_input.loc[model_input["is_trainable"], "date"].min()
    assert reference["date"].min() == first_trainable and reference["date"].max() == dates[59]
    assert reference["is_trainable"].all()
    assert len(reference) == int(
        (model_input["is_trainable"] & (model_input["date"] <= dates[59])).sum()
    )
    untagged = ServingModel(champion.model, "m", "champion", 3, "run-3", {})
    with pytest.raises(ValueError, match="m v3 has no train_start/train_end tags"):
        champion_reference(model_input, untagged)


def test_drift_report_has_every_feature_and_the_champions_scores(model_input, champion):
    run = {"id": "daily-1", "date": "2023-06-30"}
    drift, history = drift_report(model_input, champion, 20, 10, run)
    assert list(drift.columns) == DRIFT_COLUMNS
    assert sorted(drift.loc[drift["kind"] == "feature", "name"]) == sorted(
        feature_columns(model_input)
    )
    assert (drift["run_date"] == pd.Timestamp("2023-06-30")).all()
    assert (drift["model_version"] == 3).all()
    assert list(history) == ["run_date=2023-06-30"]
    pd.testing.assert_frame_equal(history["run_date=2023-06-30"], drift)
    # the prediction row by hand: scores on the 20 latest sessions vs on the training rows
    (score,) = drift[drift["kind"] == "prediction"].itertuples()
    scorable = model_input[model_input["has_features"]]
    recent = scorable[scorable["date"].isin(np.sort(scorable["date"].unique())[-20:])]
    reference = champion_reference(model_input, champion)
    columns = feature_columns(model_input)
    ref_scores = champion.model.predict_proba(reference[columns])[:, 1]
    cur_scores = champion.model.predict_proba(recent[columns])[:, 1]
    assert score.name == "score"
    assert score.psi == pytest.approx(population_stability_index(ref_scores, cur_scores, 10))
    assert score.ks_pvalue == pytest.approx(ks_2samp(ref_scores, cur_scores).pvalue)
    assert (score.reference_rows, score.current_rows) == (len(reference), len(recent))


def test_no_champion_no_drift(model_input):
    drift, history = drift_report(model_input, None, 20, 10, {"id": "r", "date": "2023-06-30"})
    assert drift.empty and list(drift.columns) == DRIFT_COLUMNS and history == {}


# --- plot_monitoring_history --------------------------------------------------------------------


def test_the_history_plots_read_every_run_of_the_drift_log(model_input, champion):
    runs = [{"id": f"d{i}", "date": day} for i, day in enumerate(["2023-06-28", "2023-06-29"])]
    log = {}
    for run in runs:
        log |= drift_report(model_input, champion, 20, 10, run)[1]
    performance = _performance([0.6, 0.5, 0.4])
    png, html = plot_monitoring_history(
        performance,
        {key: (lambda f=frame: f) for key, frame in log.items()},
        THRESHOLDS,
        {"top_features": 3},
    )
    assert isinstance(png, Figure) and len(png.axes) == 3
    drawn = {trace.name for trace in html.data}
    assert "model v1 (serving)" in drawn
    assert len(drawn) >= 3 + 1 + 1, "3 features, the prediction score, the model"
    empty_png, empty_html = plot_monitoring_history(
        _performance([]), {}, THRESHOLDS, {"top_features": 3}
    )
    assert isinstance(empty_png, Figure) and empty_html.layout.title.text


# --- model_scope per_symbol ---------------------------------------------------------------------


def test_a_verdict_reads_only_its_own_models_performance():
    """Per-symbol models share the performance table and their version numbers: AAA's failing
    v1 must not count against BBB's healthy v1."""
    bad = _performance([0.1, 0.1, 0.1, 0.1]).assign(model_name="other")
    good = _performance([0.6, 0.7, 0.6, 0.7])
    decision = _decide(pd.concat([bad, good], ignore_index=True))
    assert decision["retrain_required"] is False
    assert decision["checks"]["rolling_accuracy"] == pytest.approx(0.65)
    assert _decide(bad)["checks"]["rolling_accuracy"] is None  # none of its own rows


def test_per_symbol_verdicts_are_collected_naming_the_symbols_to_retrain():
    healthy = _decide(_performance([0.6, 0.4, 0.7, 0.6]))
    missing = _decide(_performance([0.6]), registry=_registry(champion=None))
    decision = collect_retrain_decisions(healthy, missing, healthy, symbols=("AAA", "BBB", "CCC"))
    assert decision["retrain_required"] is True
    assert decision["retrain_symbols"] == ["BBB"]
    assert decision["reasons"] == ["BBB: champion_missing: no version has alias champion"]
    assert decision["by_symbol"] == {"AAA": healthy, "BBB": missing, "CCC": healthy}
    assert (decision["run_id"], decision["run_date"]) == ("daily-1", "2024-03-20")
    calm = collect_retrain_decisions(healthy, symbols=("AAA",))
    assert calm["retrain_required"] is False and calm["retrain_symbols"] == []
    with pytest.raises(ValueError, match="2 verdicts for 1 symbols"):
        collect_retrain_decisions(healthy, healthy, symbols=("AAA",))


def test_a_symbols_drift_is_measured_on_its_rows_and_collected(model_input, champion):
    run = {"id": "daily-1", "date": "2023-06-30"}
    aaa, _ = drift_report(model_input, champion, 20, 10, run, "AAA")
    pooled, _ = drift_report(model_input, champion, 20, 10, run)
    assert list(aaa.columns) == DRIFT_COLUMNS and set(aaa["model_name"]) == {"m"}
    rows = aaa.set_index(["kind", "name"])
    assert rows.loc[("prediction", "score"), "current_rows"] == 20  # one symbol, 20 sessions
    assert pooled.set_index(["kind", "name"]).loc[("prediction", "score"), "current_rows"] == 20 * (
        model_input["symbol"].nunique()
    )
    empty, _ = drift_report(model_input, None, 20, 10, run, "BBB")
    drift, history = collect_drift(run, aaa, empty)
    pd.testing.assert_frame_equal(drift, aaa)
    assert list(history) == ["run_date=2023-06-30"]
    nothing, no_history = collect_drift(run, empty)
    assert nothing.empty and list(nothing.columns) == DRIFT_COLUMNS and no_history == {}
