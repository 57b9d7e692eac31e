"""Inference node: score the latest sessions with a ServingModel built by hand (no MLflow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stock_ml.gold_schema import feature_columns
from stock_ml.models import ServingModel
from stock_ml.pipelines.inference.nodes import (
    collect_predictions,
    export_for_api,
    score_latest_sessions,
)
from stock_ml.rollout import canary_symbols

HORIZON = 3
PREDICTION_COLUMNS = [
    "target_prediction_date",
    "symbol",
    "as_of_date",
    "score",
    "predicted_up",
    "model_name",
    "model_alias",
    "model_version",
    "mlflow_run_id",
    "role",
    "scored_by_run",
    "scored_at",
]
RUN = {"id": "daily-1", "date": "2024-03-20", "time": "2024-03-20T17:00:00Z"}


@pytest.fixture
def serving(model_input: pd.DataFrame) -> ServingModel:
    trainable = model_input[model_input.is_trainable]
    estimator = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))
    estimator.fit(trainable[feature_columns(trainable)], trainable["label_up"].astype(int))
    return ServingModel(
        model=estimator, name="test_stock_ml_direction", alias="champion", version=7, run_id="r0"
    )


def _key(day, version=7) -> str:
    return f"as_of_date={pd.Timestamp(day):%Y-%m-%d}/model_version={version}"


def _score(serving, model_input, score_sessions=5, threshold=0.5, shadow=None, run=RUN):
    return score_latest_sessions(
        serving, model_input, score_sessions, HORIZON, threshold, shadow, run
    )


def test_keys_cover_exactly_the_last_score_sessions_dates(serving, model_input):
    predictions = _score(serving, model_input, score_sessions=5)
    last_dates = np.sort(model_input["date"].unique())[-5:]
    assert list(predictions) == [_key(day) for day in last_dates]
    for key, frame in predictions.items():
        assert list(frame.columns) == PREDICTION_COLUMNS
        assert len(frame) == 3
        assert frame["as_of_date"].nunique() == 1
        assert _key(frame["as_of_date"].iloc[0]) == key
        assert sorted(frame["symbol"]) == ["AAA", "BBB", "CCC"]
        assert frame.index.tolist() == [0, 1, 2]


def test_only_sessions_with_features_are_scored_and_counted(serving, model_input):
    model_input = model_input.copy()
    dates = np.sort(model_input["date"].unique())
    # The last session lost its features for every symbol, the one before for AAA only.
    model_input.loc[model_input.date == dates[-1], "has_features"] = False
    model_input.loc[(model_input.date == dates[-2]) & (model_input.symbol == "AAA"), "roc5"] = (
        np.nan
    )
    model_input.loc[
        (model_input.date == dates[-2]) & (model_input.symbol == "AAA"), "has_features"
    ] = False
    predictions = _score(serving, model_input, score_sessions=4)
    assert list(predictions) == [_key(day) for day in dates[-5:-1]]
    assert sorted(predictions[_key(dates[-2])]["symbol"]) == ["BBB", "CCC"]


def test_every_prediction_names_the_serving_model(serving, model_input):
    predictions = _score(serving, model_input)
    stacked = pd.concat(predictions.values(), ignore_index=True)
    assert (stacked["model_version"] == 7).all()
    assert (stacked["model_name"] == "test_stock_ml_direction").all()
    assert (stacked["model_alias"] == "champion").all()
    assert (stacked["mlflow_run_id"] == "r0").all()


def test_scores_are_the_model_probabilities_of_each_row(serving, model_input):
    predictions = _score(serving, model_input)
    stacked = pd.concat(predictions.values(), ignore_index=True)
    rows = stacked.merge(
        model_input, left_on=["symbol", "as_of_date"], right_on=["symbol", "date"], how="left"
    )
    expected = serving.model.predict_proba(rows[feature_columns(model_input)])[:, 1]
    np.testing.assert_allclose(rows["score"], expected)
    assert stacked["score"].between(0, 1).all()
    # Features are picked by name: a different column order in the table gives the same scores.
    reordered = model_input[list(reversed(model_input.columns))]
    again = pd.concat(_score(serving, reordered).values(), ignore_index=True)
    pd.testing.assert_frame_equal(again, stacked)


def test_predicted_up_is_score_at_or_above_threshold(serving, model_input):
    base = pd.concat(_score(serving, model_input).values(), ignore_index=True)
    threshold = float(base["score"].median())  # one row sits exactly on the threshold
    stacked = pd.concat(
        _score(serving, model_input, threshold=threshold).values(), ignore_index=True
    )
    np.testing.assert_array_equal(
        stacked["predicted_up"], (stacked["score"] >= threshold).astype(int)
    )
    assert stacked.loc[stacked["score"] == threshold, "predicted_up"].tolist() == [1]
    assert 0 < stacked["predicted_up"].sum() < len(stacked)
    assert set(stacked["predicted_up"].unique()) <= {0, 1}


def test_target_prediction_date_is_target_date_where_known(serving, model_input):
    predictions = _score(serving, model_input, score_sessions=5)
    stacked = pd.concat(predictions.values(), ignore_index=True)
    rows = stacked.merge(
        model_input[["symbol", "date", "target_date"]],
        left_on=["symbol", "as_of_date"],
        right_on=["symbol", "date"],
    )
    known = rows["target_date"].notna()
    # 120 sessions, horizon 3: the last 3 sessions have no realised label.
    assert known.sum() == 2 * 3
    assert (rows.loc[known, "target_prediction_date"] == rows.loc[known, "target_date"]).all()
    unknown = rows.loc[~known]
    expected = unknown["as_of_date"] + pd.offsets.BDay(HORIZON)
    assert (unknown["target_prediction_date"] == expected).all()
    # Concretely: the forecast of the last session lands on a weekday, HORIZON weekdays later.
    last = pd.Timestamp(model_input["date"].max())
    (target,) = set(unknown.loc[unknown.as_of_date == last, "target_prediction_date"])
    assert target.dayofweek < 5
    assert len(pd.bdate_range(last, target)) == HORIZON + 1


def test_no_scorable_session_raises(serving, model_input):
    empty = model_input.assign(has_features=False)
    with pytest.raises(ValueError, match="No session has a complete feature vector"):
        _score(serving, empty)


def test_zero_score_sessions_is_rejected(serving, model_input):
    # dates[-0:] would silently score every session
    with pytest.raises(ValueError, match="score_sessions must be ≥ 1"):
        _score(serving, model_input, score_sessions=0)


def _other(serving: ServingModel, version: int) -> ServingModel:
    return ServingModel(serving.model, serving.name, "challenger", version, f"r{version}")


def test_no_champion_scores_nothing(model_input):
    assert _score(None, model_input) == {}


def test_challenger_is_scored_in_shadow_beside_the_champion(serving, model_input):
    predictions = _score(serving, model_input, 2, shadow=_other(serving, 8))
    days = np.sort(model_input["date"].unique())[-2:]
    assert sorted(predictions) == sorted(_key(d, v) for d in days for v in (7, 8))
    for key, frame in predictions.items():
        version = int(key.rsplit("=", 1)[1])
        assert set(zip(frame["model_version"], frame["role"], strict=True)) == {
            (version, "serving" if version == 7 else "shadow")
        }
        assert not frame.duplicated(["target_prediction_date", "symbol"]).any()
        assert set(frame["scored_by_run"]) == {"daily-1"}
        assert set(frame["scored_at"]) == {pd.Timestamp("2024-03-20T17:00:00Z")}
    # the challenger that already is the champion is not scored twice
    same = _score(serving, model_input, 2, shadow=_other(serving, 7))
    assert sorted(same) == [_key(d) for d in days]
    assert all(set(f["role"]) == {"serving"} for f in same.values())


def _loaders(*scorings):
    return {key: (lambda f=frame: f) for scored in scorings for key, frame in scored.items()}


def test_export_for_api_publishes_the_champions_latest_date_only(serving, model_input):
    predictions = _score(serving, model_input, 3, shadow=_other(serving, 8))
    latest, history = export_for_api(_loaders(predictions))
    last = f"{pd.Timestamp(np.sort(model_input['date'].unique())[-1]):%Y-%m-%d}"
    assert list(history) == [last], "earlier dates keep what was published on their day"
    assert latest == history[last]
    assert latest["model_version"] == 7 and latest["as_of_date"] == last
    assert [p["symbol"] for p in latest["predictions"]] == ["AAA", "BBB", "CCC"]
    frame = predictions[f"as_of_date={last}/model_version=7"]
    assert [p["score"] for p in latest["predictions"]] == pytest.approx(
        frame.sort_values("symbol")["score"].round(6).tolist()
    )
    assert export_for_api({}) == ({"as_of_date": None, "predictions": []}, {})


def test_a_day_rescored_after_a_promotion_publishes_the_new_champion(serving, model_input):
    before = _score(serving, model_input, 2)
    promoted = ServingModel(serving.model, serving.name, "champion", 8, "r8")
    later = {**RUN, "id": "daily-1-rerun", "time": "2024-03-20T19:00:00Z"}
    after = _score(promoted, model_input, 2, run=later)
    latest, _ = export_for_api(_loaders(before, after))
    assert latest["model_version"] == 8 and latest["mlflow_run_id"] == "r8"
    assert len(latest["predictions"]) == 3


# --- a run narrowed to a scope (run.symbols / run.exchange_groups) ------------------------------

UNIVERSE = {"groups": {"warsaw": {"calendar": "XWAR", "symbols": ["AAA", "BBB", "CCC"]}}}
NARROWED = {"id": "daily-1-aaa", "date": "2024-03-20", "time": "2024-03-20T19:00:00Z"}


def test_a_narrowed_run_scores_only_its_scope(serving, model_input):
    whole = score_latest_sessions(serving, model_input, 3, HORIZON, 0.5, None, RUN, UNIVERSE)
    assert whole.keys() == _score(serving, model_input, 3).keys(), "no scope: as before"
    run = {**NARROWED, "symbols": ["aaa", "CCC"]}
    narrowed = score_latest_sessions(serving, model_input, 3, HORIZON, 0.5, None, run, UNIVERSE)
    assert narrowed.keys() == whole.keys()
    for key, frame in narrowed.items():
        assert sorted(frame["symbol"]) == ["AAA", "CCC"]
        expected = whole[key].set_index("symbol").loc[["AAA", "CCC"], "score"]
        assert frame.set_index("symbol")["score"].to_dict() == pytest.approx(expected.to_dict())
        assert set(frame["scored_by_run"]) == {"daily-1-aaa"}
    with pytest.raises(ValueError, match=r"\['ZZZ'\] not in any enabled exchange group"):
        score_latest_sessions(
            serving, model_input, 3, HORIZON, 0.5, None, {**run, "symbols": "ZZZ"}, UNIVERSE
        )


def test_a_narrowed_runs_sessions_are_its_scopes_latest(serving, model_input):
    model_input = model_input.copy()
    last = model_input["date"].max()
    model_input.loc[
        (model_input["date"] == last) & (model_input["symbol"] == "BBB"), "has_features"
    ] = False
    run = {**NARROWED, "symbols": ["BBB"]}
    narrowed = score_latest_sessions(serving, model_input, 2, HORIZON, 0.5, None, run, UNIVERSE)
    days = np.sort(model_input.loc[model_input["date"] < last, "date"].unique())[-2:]
    assert list(narrowed) == [_key(day) for day in days]


def test_a_narrowed_rescore_through_the_log_keeps_every_symbol_published(
    serving, model_input, tmp_path
):
    """Full scoring, then a run narrowed to AAA rescoring the same dates with a new champion:
    the log keeps BBB and CCC of every partition, latest.json has all three, AAA's the newest."""
    from stock_ml.io import PredictionLogDataset

    log = PredictionLogDataset(
        path=str(tmp_path / "predictions"),
        dataset="stock_ml.io.AtomicParquetDataset",
        filename_suffix=".parquet",
        replace_by=["symbol"],
    )
    log.save(_score(serving, model_input, 2))
    promoted = ServingModel(serving.model, serving.name, "champion", 8, "r8")
    rerun = {**NARROWED, "symbols": ["AAA"]}
    log.save(score_latest_sessions(promoted, model_input, 2, HORIZON, 0.5, None, rerun, UNIVERSE))
    rescored = {**RUN, "id": "daily-1-again", "time": "2024-03-20T20:00:00Z", "symbols": "AAA"}
    log.save(
        score_latest_sessions(promoted, model_input, 2, HORIZON, 0.5, None, rescored, UNIVERSE)
    )
    stored = {key: load() for key, load in log.load().items()}
    last = f"{pd.Timestamp(model_input['date'].max()):%Y-%m-%d}"
    assert sorted(stored[_key(last)]["symbol"]) == ["AAA", "BBB", "CCC"]  # v7: the full run's
    assert set(stored[_key(last)]["scored_by_run"]) == {"daily-1"}
    v8 = stored[_key(last, 8)]
    assert v8[["symbol", "scored_by_run"]].values.tolist() == [["AAA", "daily-1-again"]]

    latest, history = export_for_api(log.load())
    assert latest["as_of_date"] == last and history == {last: latest}
    assert [(p["symbol"], p["model_version"]) for p in latest["predictions"]] == [
        ("AAA", 8),
        ("BBB", 7),
        ("CCC", 7),
    ]
    assert latest["model_version"] == 8 and latest["mlflow_run_id"] == "r8", "latest scoring"
    full = stored[_key(last)].set_index("symbol")["score"]
    assert [p["score"] for p in latest["predictions"][1:]] == pytest.approx(
        full[["BBB", "CCC"]].round(6).tolist()
    )


# --- model_scope per_symbol ---------------------------------------------------------------------


def _symbol_model(serving: ServingModel, symbol: str, version: int) -> ServingModel:
    name = f"test_stock_ml_direction_{symbol.lower()}"
    return ServingModel(serving.model, name, "champion", version, f"run-{symbol}")


def _score_symbol(model, model_input, run, symbol="AAA"):
    return score_latest_sessions(
        model, model_input, 3, HORIZON, 0.5, None, run, UNIVERSE, symbol=symbol
    )


def test_a_symbols_model_scores_only_its_symbol(serving, model_input):
    aaa = _symbol_model(serving, "AAA", 1)
    whole = _score(serving, model_input, 3)
    only = _score_symbol(aaa, model_input, RUN)
    assert only.keys() == {_key(day, 1) for day in [k.split("/")[0][11:] for k in whole]}
    for key, frame in only.items():
        assert frame["symbol"].tolist() == ["AAA"]
        assert frame["model_name"].tolist() == ["test_stock_ml_direction_aaa"]
        pooled = whole[key.replace("model_version=1", "model_version=7")]
        assert frame["score"].iloc[0] == pytest.approx(
            pooled.loc[pooled["symbol"] == "AAA", "score"].iloc[0]
        )
    # A run narrowed to other symbols, and a symbol without features, score nothing (no error:
    # the other symbols' scoring runs in the same task).
    narrowed = {**NARROWED, "symbols": ["BBB"]}
    assert _score_symbol(aaa, model_input, narrowed) == {}
    gap = model_input.assign(has_features=model_input["symbol"] != "AAA")
    assert _score_symbol(aaa, gap, RUN) == {}


def test_collected_symbol_predictions_share_partitions_by_version(serving, model_input):
    """AAA's v1 and BBB's v1 share as_of_date=D/model_version=1; CCC's v2 has its own."""
    scored = {
        symbol: score_latest_sessions(
            _symbol_model(serving, symbol, version),
            model_input,
            2,
            HORIZON,
            0.5,
            None,
            RUN,
            UNIVERSE,
            symbol=symbol,
        )
        for symbol, version in [("AAA", 1), ("BBB", 1), ("CCC", 2)]
    }
    log = collect_predictions(*scored.values())
    days = sorted({key.split("/")[0] for key in scored["AAA"]})
    assert sorted(log) == sorted(f"{day}/model_version={v}" for day in days for v in (1, 2))
    for day in days:
        assert sorted(log[f"{day}/model_version=1"]["symbol"]) == ["AAA", "BBB"]
        assert log[f"{day}/model_version=2"]["model_name"].tolist() == [
            "test_stock_ml_direction_ccc"
        ]
    assert collect_predictions({}, {}) == {}
    # The API publishes every symbol's own model's prediction, each naming its model.
    latest, _ = export_for_api({key: (lambda f=frame: f) for key, frame in log.items()})
    assert [(p["symbol"], p["model_name"], p["model_version"]) for p in latest["predictions"]] == [
        ("AAA", "test_stock_ml_direction_aaa", 1),
        ("BBB", "test_stock_ml_direction_bbb", 1),
        ("CCC", "test_stock_ml_direction_ccc", 2),
    ]


# --- staged rollout -----------------------------------------------------------------------------


def _rollout(share: float, candidate: int = 7, baseline: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"rollout_id": "r-old", "status": "failed", "candidate_version": 5},
            {
                "rollout_id": "r1",
                "status": "active",
                "candidate_version": candidate,
                "baseline_version": baseline,
                "stage": 1,
                "share": share,
            },
        ]
    )


def test_a_rollout_serves_the_canary_cohort_with_the_champion_and_the_rest_with_previous(
    serving, model_input
):
    previous = ServingModel(serving.model, serving.name, "previous", 6, "r6")
    canary = canary_symbols(["AAA", "BBB", "CCC"], "r1", 0.5)
    assert len(canary) == 2
    scored = score_latest_sessions(
        serving, model_input, 3, HORIZON, 0.5, None, RUN, UNIVERSE, _rollout(0.5), previous
    )
    log = pd.concat(scored.values(), ignore_index=True)
    served = log[log["role"] == "serving"]
    # every symbol, every date: exactly one serving prediction, from its cohort's model
    assert served.groupby(["as_of_date", "symbol"]).size().eq(1).all()
    assert len(served) == 3 * 3
    served_by = served.groupby("symbol")[["model_version", "model_alias"]].first()
    for symbol in ["AAA", "BBB", "CCC"]:
        expected = (7, "champion") if symbol in canary else (6, "previous")
        assert tuple(served_by.loc[symbol]) == expected, symbol
    # the baseline also scores the canary cohort, in shadow: the rollout step's paired control
    shadow = log[log["role"] == "shadow"]
    assert set(shadow["symbol"]) == canary and set(shadow["model_version"]) == {6}
    assert len(shadow) == len(canary) * 3
    # The registry no longer matches the rollout (previous gone): the champion serves everyone.
    alone = score_latest_sessions(
        serving, model_input, 3, HORIZON, 0.5, None, RUN, UNIVERSE, _rollout(0.5), None
    )
    assert set(pd.concat(alone.values())["model_version"]) == {7}
    # No active rollout: as before.
    done = _rollout(0.5).assign(status="complete")
    before = score_latest_sessions(
        serving, model_input, 3, HORIZON, 0.5, None, RUN, UNIVERSE, done, previous
    )
    assert set(pd.concat(before.values())["model_version"]) == {7}
