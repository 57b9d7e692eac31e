"""Training nodes: embargoed split, seeded search, refit, holdout scoring and the report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stock_ml.gold_schema import feature_columns
from stock_ml.models import ServingModel
from stock_ml.pipelines.training.nodes import (
    data_lineage,
    evaluate_holdout,
    fit_model,
    package_challenger,
    run_params,
    score_holdout,
    search_model,
    split_by_date,
)
from tests.pipelines.conftest import HORIZON

SPLIT = {"holdout_sessions": 20, "embargo_sessions": HORIZON}
EVALUATION = {"top_k": 1, "rebalance_every": 3, "cost_bp": 10, "sessions_per_year": 252}
EVALUATION["momentum_sessions"] = 5


@pytest.fixture
def search() -> dict:
    """Two families, a few trials: the real search machinery at unit-test size."""
    return {
        "profile": "tiny",
        "objective": "rank_ic",
        "profiles": {
            "tiny": {
                "n_trials": 5,
                "startup_trials": 3,
                "timeout_seconds": None,
                "cv_folds": 2,
                "families": ["logistic", "extra_trees"],
            }
        },
        "families": {
            "logistic": {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "scale": True,
                "fixed": {"max_iter": 500},
                "space": {"C": {"type": "float", "low": 1e-3, "high": 10.0, "log": True}},
            },
            "extra_trees": {
                "estimator": "sklearn.ensemble.ExtraTreesClassifier",
                "fixed": {"n_estimators": 20},
                "space": {
                    "max_depth": {"type": "int", "low": 2, "high": 6},
                    "max_features": {"type": "categorical", "choices": ["sqrt", 0.5]},
                },
            },
        },
    }


def _trainable_dates(model_input: pd.DataFrame) -> np.ndarray:
    return np.sort(model_input.loc[model_input.is_trainable, "date"].unique())


# --- split_by_date ------------------------------------------------------------------------------


def test_split_holds_out_the_last_sessions_and_embargoes_the_ones_before(model_input):
    train, holdout, window = split_by_date(model_input, SPLIT, HORIZON)
    dates = _trainable_dates(model_input)
    np.testing.assert_array_equal(np.sort(holdout["date"].unique()), dates[-20:])
    assert len(holdout) == 20 * 3 and holdout["is_trainable"].all()
    # the embargo's sessions between train and holdout never train
    np.testing.assert_array_equal(np.sort(train["date"].unique()), dates[: -20 - HORIZON])
    assert (train["target_date"] < holdout["date"].min()).all()
    assert train["label_up"].notna().all()
    assert train[feature_columns(train)].notna().all(axis=None)
    assert window == {
        "train_start": str(pd.Timestamp(dates[0]).date()),
        "train_end": str(pd.Timestamp(dates[-24]).date()),
        "holdout_start": str(pd.Timestamp(dates[-20]).date()),
        "holdout_end": str(pd.Timestamp(dates[-1]).date()),
        "train_rows": len(train),
        "holdout_rows": 60,
        "embargo_sessions": HORIZON,
        "purged_rows": 0,
    }


def test_a_longer_embargo_drops_more_sessions(model_input):
    train, _, window = split_by_date(model_input, {**SPLIT, "embargo_sessions": 8}, HORIZON)
    dates = _trainable_dates(model_input)
    assert train["date"].max() == dates[-29]
    assert window["embargo_sessions"] == 8


def test_split_refuses_an_embargo_shorter_than_the_horizon(model_input):
    with pytest.raises(ValueError, match="shorter than the label horizon"):
        split_by_date(model_input, {**SPLIT, "embargo_sessions": HORIZON - 1}, HORIZON)


def test_split_refuses_a_holdout_with_no_training_period(model_input):
    sessions = len(_trainable_dates(model_input))
    with pytest.raises(ValueError, match=rf"{sessions} trainable sessions cannot hold"):
        split_by_date(model_input, {**SPLIT, "holdout_sessions": sessions - HORIZON}, HORIZON)
    with pytest.raises(ValueError, match="holdout_sessions must be ≥ 1"):
        split_by_date(model_input, {**SPLIT, "holdout_sessions": 0}, HORIZON)


# --- search_model / fit_model -------------------------------------------------------------------


def test_search_is_reproducible_with_the_same_seed(model_input, search):
    train, _, _ = split_by_date(model_input, SPLIT, HORIZON)
    trials_a, best_a = search_model(train, search, SPLIT, HORIZON, seed=7)
    trials_b, best_b = search_model(train, search, SPLIT, HORIZON, seed=7)
    columns = ["trial", "state", "family", "params", "cv_score", "fold_scores"]
    pd.testing.assert_frame_equal(trials_a[columns], trials_b[columns])
    drop = {"search_seconds"}
    assert {k: v for k, v in best_a.items() if k not in drop} == {
        k: v for k, v in best_b.items() if k not in drop
    }
    assert len(trials_a) == 5 and set(trials_a["state"]) == {"COMPLETE"}
    assert set(trials_a["family"]) <= {"logistic", "extra_trees"}
    assert all(len(scores) == 2 for scores in trials_a["fold_scores"]), "one score per CV fold"
    best_row = trials_a.loc[trials_a["cv_score"].idxmax()]
    assert best_a["trial"] == best_row["trial"] and best_a["family"] == best_row["family"]
    assert best_a["cv_score"] == pytest.approx(np.mean(best_row["fold_scores"]))
    other, _ = search_model(train, search, SPLIT, HORIZON, seed=8)
    assert other["params"].tolist() != trials_a["params"].tolist(), "the seed drives the search"


def test_search_records_failed_trials_and_fails_when_none_completes(model_input, search):
    train, _, _ = split_by_date(model_input, SPLIT, HORIZON)
    broken = {
        **search,
        "profiles": {"tiny": {**search["profiles"]["tiny"], "families": ["logistic"]}},
        "families": {
            "logistic": {**search["families"]["logistic"], "fixed": {"max_iter": -1}},
        },
    }
    with pytest.raises(RuntimeError, match="no trial completed.*max_iter"):
        search_model(train, broken, SPLIT, HORIZON, seed=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"profile": "huge"}, "profile 'huge' is not one of"),
        ({"objective": "sharpe"}, "objective must be one of"),
    ],
)
def test_search_conf_errors_are_clear(model_input, search, change, message):
    train, _, _ = split_by_date(model_input, SPLIT, HORIZON)
    with pytest.raises((ValueError, RuntimeError), match=message):
        search_model(train, {**search, **change}, SPLIT, HORIZON, seed=1)


def test_search_refuses_estimators_that_are_not_probabilistic_classifiers(model_input, search):
    train, _, _ = split_by_date(model_input, SPLIT, HORIZON)
    for path, message in [
        ("sklearn.linear_model.Ridge", "is not a scikit-learn classifier"),
        ("sklearn.nothing.Here", "cannot import estimator"),
    ]:
        families = {"logistic": {**search["families"]["logistic"], "estimator": path}}
        profile = {"tiny": {**search["profiles"]["tiny"], "families": ["logistic"]}}
        conf = {**search, "families": families, "profiles": profile}
        with pytest.raises((ValueError, RuntimeError), match=message):
            search_model(train, conf, SPLIT, HORIZON, seed=1)


def test_fit_model_refits_the_chosen_family_on_feature_columns_only(model_input, search):
    train, _, _ = split_by_date(model_input, SPLIT, HORIZON)
    best = {"family": "extra_trees", "params": {"max_depth": 3, "max_features": "sqrt"}}
    estimator = fit_model(train, best, search, seed=5)
    assert list(estimator.feature_names_in_) == feature_columns(model_input)
    for leaky in ["forward_return", "label_up", "target_date", "horizon", "is_trainable"]:
        assert leaky not in estimator.feature_names_in_
    classifier = estimator.named_steps["classify"]
    assert type(classifier).__name__ == "ExtraTreesClassifier"
    assert (classifier.max_depth, classifier.n_estimators, classifier.random_state) == (3, 20, 5)
    logistic = fit_model(train, {"family": "logistic", "params": {"C": 0.5}}, search, seed=5)
    assert list(logistic.named_steps) == ["scale", "classify"], "the family asks for scaling"


def test_search_finds_a_signal_that_is_there(search):
    """A label driven by one feature: the search must pick a model that ranks by it."""
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2022-01-03", periods=160)
    rows = []
    for symbol in ["A", "B", "C", "D", "E"]:
        signal = rng.normal(size=len(dates))
        rows.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": dates,
                    "signal": signal,
                    "noise": rng.normal(size=len(dates)),
                    "target_date": dates + pd.offsets.BDay(1),
                    "forward_return": signal / 100 + rng.normal(scale=0.002, size=len(dates)),
                    "horizon": 1,
                    "has_features": True,
                    "is_trainable": True,
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    frame["label_up"] = (frame["forward_return"] > 0).astype(float)
    split = {"holdout_sessions": 40, "embargo_sessions": 1}
    train, holdout, _ = split_by_date(frame, split, 1)
    _, best = search_model(train, search, split, 1, seed=0)
    assert best["cv_score"] > 0.7, "rank IC of a model that found the signal"
    estimator = fit_model(train, best, search, seed=0)
    scores = score_holdout(estimator, None, holdout, train, _prices(frame), EVALUATION)
    report, *_ = evaluate_holdout(scores, _prices(frame), EVALUATION, 1, 0.5)
    model = report.set_index("scorer").loc["model"]
    assert model["roc_auc"] > 0.9 and model["rank_ic_mean"] > 0.7 and model["rank_ic_tstat"] > 10


def _prices(frame: pd.DataFrame) -> pd.DataFrame:
    """Closes consistent with the rows' one-session forward returns."""
    ordered = frame.sort_values(["symbol", "date"])
    growth = 1 + ordered.groupby("symbol")["forward_return"].shift(1).fillna(0.0)
    close = 100 * growth.groupby(ordered["symbol"]).cumprod()
    return ordered.assign(close=close)[["symbol", "date", "close"]]


# --- score_holdout / evaluate_holdout -----------------------------------------------------------


@pytest.fixture
def fitted(model_input, search):
    train, holdout, _ = split_by_date(model_input, SPLIT, HORIZON)
    estimator = fit_model(train, {"family": "logistic", "params": {"C": 0.1}}, search, seed=0)
    return train, holdout, estimator


def test_score_holdout_scores_model_baselines_and_champion(fitted, synthetic_prices, search):
    train, holdout, estimator = fitted
    scores = score_holdout(estimator, None, holdout, train, synthetic_prices, EVALUATION)
    assert len(scores) == len(holdout)
    expected = estimator.predict_proba(holdout[feature_columns(holdout)])[:, 1]
    np.testing.assert_allclose(scores["score_model"], expected)
    assert scores["score_champion"].isna().all(), "no champion: nothing to compare"
    assert (scores["score_always_up"] == train["label_up"].mean()).all()
    close = synthetic_prices.set_index(["symbol", "date"])["close"]
    row = scores.iloc[7]
    past = synthetic_prices[synthetic_prices.symbol == row.symbol].set_index("date")["close"]
    position = past.index.get_loc(row.date)
    assert row.score_momentum == pytest.approx(
        close[(row.symbol, row.date)] / past.iloc[position - 5] - 1
    )

    champion = ServingModel(model=estimator, name="m", alias="champion", version=3, run_id="r")
    with_champion = score_holdout(estimator, champion, holdout, train, synthetic_prices, EVALUATION)
    np.testing.assert_allclose(with_champion["score_champion"], expected)

    older = fit_model(
        train.assign(feature_gone=0.0), {"family": "logistic", "params": {}}, search, 0
    )
    stale = ServingModel(model=older, name="m", alias="champion", version=2, run_id="r")
    incomparable = score_holdout(estimator, stale, holdout, train, synthetic_prices, EVALUATION)
    assert incomparable["score_champion"].isna().all(), "champion reads a feature we lack"


def test_evaluate_holdout_reports_every_scorer_the_same_way(fitted, synthetic_prices):
    train, holdout, estimator = fitted
    scores = score_holdout(estimator, None, holdout, train, synthetic_prices, EVALUATION)
    report, ic, equity, metrics = evaluate_holdout(
        scores, synthetic_prices, EVALUATION, HORIZON, 0.5
    )
    assert report["scorer"].tolist() == ["model", "always_up", "momentum"]
    rows = report.set_index("scorer")
    label = holdout["label_up"].astype(int)
    predicted = (scores["score_model"] >= 0.5).astype(int)
    assert rows.loc["model", "accuracy"] == pytest.approx((predicted == label).mean())
    assert rows.loc["always_up", "accuracy"] == pytest.approx(label.mean())
    assert rows.loc["always_up", "roc_auc"] == 0.5
    assert math.isnan(rows.loc["always_up", "rank_ic_mean"]), "a constant has no ranking"
    assert math.isnan(rows.loc["momentum", "log_loss"]), "momentum is not a probability"
    assert rows.loc["always_up", "trades"] == 3.0, "the whole universe, held throughout"
    for scorer in ["model", "momentum"]:
        assert 0 < rows.loc[scorer, "trades"] <= 3 * 20
        assert 0 <= rows.loc[scorer, "max_drawdown"] < 1
        assert rows.loc[scorer, "rank_ic_dates"] == 20.0
    assert set(ic["scorer"]) == set(equity["scorer"]) == {"model", "always_up", "momentum"}
    assert len(equity[equity.scorer == "model"]) == 20
    assert metrics["model.sharpe"] == {"value": rows.loc["model", "sharpe"], "step": 0}
    assert "always_up.rank_ic_mean" not in metrics, "NaN is not logged"


# --- package_challenger / run_params / lineage / reference --------------------------------------


def test_package_challenger_carries_an_input_example_and_lineage_tags(fitted, model_input):
    train, _, estimator = fitted
    lineage = data_lineage(model_input)
    _, _, window = split_by_date(model_input, SPLIT, HORIZON)
    best = {
        "family": "logistic",
        "profile": "tiny",
        "objective": "rank_ic",
        "cv_score": 0.0123,
        "trial": 2,
        "n_trials": 5,
        "params": {"C": 0.1},
        "search_seconds": 1.5,
    }
    run = {"id": "run-9", "date": "2023-06-30", "code_version": "0.1.0+gabc"}
    candidate = package_challenger(estimator, train, best, lineage, window, run)
    assert candidate.model is estimator
    assert list(candidate.input_example.columns) == list(estimator.feature_names_in_)
    assert len(candidate.input_example) == 5
    assert candidate.tags["dataset_run_id"] == "unit-test-run"
    assert candidate.tags["feature_schema_hash"] == model_input["feature_schema_hash"].iloc[0]
    assert candidate.tags["train_end"] == window["train_end"]
    assert candidate.tags["family"] == "logistic" and candidate.tags["cv_score"] == "0.012300"
    assert candidate.tags["code_version"] == "0.1.0+gabc"
    assert candidate.tags["training_run_id"] == "run-9"
    assert candidate.tags["training_run_date"] == "2023-06-30"
    params = run_params(lineage, window, best)
    assert params["data"]["features"] == len(feature_columns(model_input))
    assert params["window"] == window
    assert params["search"]["best.C"] == 0.1 and params["search"]["profile"] == "tiny"


def test_data_lineage_refuses_mixed_builds(model_input):
    mixed = model_input.copy()
    mixed.loc[mixed.index[0], "dataset_run_id"] = "another-run"
    with pytest.raises(ValueError, match="mixes builds: dataset_run_id"):
        data_lineage(mixed)
