"""Registry and run datasets against a real MLflow store (SQLite in a temporary folder)."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression

from stock_ml.io import (
    MlflowNestedRunsDataset,
    MlflowParamsDataset,
    ModelRegistryDataset,
    RegisteredModelDataset,
)
from stock_ml.models import AliasUpdate, ModelCandidate

NAME = "unit_stock_ml_direction"


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A fresh SQLite tracking store and artifact root; no run left open afterwards."""
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("unit", artifact_location=(tmp_path / "art").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield mlflow.MlflowClient()
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _candidate(estimator, seed: int = 0) -> ModelCandidate:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(rng.normal(size=(200, 3)), columns=["f_a", "f_b", "f_c"])
    label = (features["f_a"] > 0).astype(int)
    estimator.fit(features, label)
    return ModelCandidate(
        model=estimator,
        input_example=features.head(5),
        tags={"family": type(estimator).__name__, "dataset_run_id": "run-1"},
        description="unit-test model",
    )


def _register(candidate: ModelCandidate, aliases=("challenger",)) -> None:
    with mlflow.start_run():
        RegisteredModelDataset(NAME, alias=aliases[0], aliases=list(aliases)).save(candidate)


def test_save_registers_tags_and_aliases_a_tree_model_that_reloads(tracking):
    candidate = _candidate(ExtraTreesClassifier(n_estimators=5, random_state=0))
    _register(candidate)
    version = tracking.get_model_version_by_alias(NAME, "challenger")
    assert int(version.version) == 1
    assert version.tags["family"] == "ExtraTreesClassifier"
    assert version.tags["dataset_run_id"] == "run-1"
    assert version.description == "unit-test model"
    loaded = RegisteredModelDataset(NAME, alias="challenger").load()
    assert (loaded.version, loaded.alias, loaded.run_id) == (1, "challenger", version.run_id)
    assert loaded.tags["family"] == "ExtraTreesClassifier"
    example = candidate.input_example
    np.testing.assert_allclose(
        loaded.model.predict_proba(example), candidate.model.predict_proba(example)
    )
    # the pyfunc flavour predicts probabilities, with a signature from the input example
    pyfunc = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    assert [c.name for c in pyfunc.metadata.get_input_schema().inputs] == ["f_a", "f_b", "f_c"]
    np.testing.assert_allclose(pyfunc.predict(example), candidate.model.predict_proba(example))


def test_unset_alias_is_none_when_optional_and_a_clear_error_otherwise(tracking):
    assert RegisteredModelDataset(NAME, alias="champion", optional=True).load() is None
    assert not RegisteredModelDataset(NAME, alias="champion").exists()
    _register(_candidate(LogisticRegression()))
    assert RegisteredModelDataset(NAME, alias="champion", optional=True).load() is None
    with pytest.raises(DatasetError, match="has alias 'champion'.*kedro run --pipeline"):
        RegisteredModelDataset(NAME, alias="champion").load()


def test_save_refuses_a_bare_estimator_or_a_mismatched_example(tracking):
    candidate = _candidate(LogisticRegression())
    with mlflow.start_run(), pytest.raises(DatasetError, match="saves a stock_ml.models"):
        RegisteredModelDataset(NAME).save(candidate.model)
    shuffled = ModelCandidate(candidate.model, candidate.input_example[["f_b", "f_a", "f_c"]])
    with mlflow.start_run(), pytest.raises(DatasetError, match="input example's columns"):
        RegisteredModelDataset(NAME).save(shuffled)


def test_registry_state_and_alias_updates(tracking):
    registry = ModelRegistryDataset(NAME)
    empty = registry.load()
    assert (empty.aliases, empty.version_tags) == ({}, {})
    for seed in range(3):
        _register(_candidate(LogisticRegression(), seed))
    state = registry.load()
    assert state.aliases == {"challenger": 3}
    assert sorted(state.version_tags) == [1, 2, 3]
    registry.save(
        AliasUpdate(
            set_aliases={"champion": 3, "previous": 2},
            delete_aliases=["challenger", "not-there"],
            version_tags={3: {"promotion_action": "promote"}},
        )
    )
    state = registry.load()
    assert state.aliases == {"champion": 3, "previous": 2}
    assert state.version_tags[3]["promotion_action"] == "promote"
    assert RegisteredModelDataset(NAME, alias="champion").load().version == 3
    with pytest.raises(DatasetError, match="does not exist"):
        ModelRegistryDataset("no_such_model").save(AliasUpdate(set_aliases={"champion": 1}))


def test_params_dataset_flattens_into_the_active_run(tracking):
    with mlflow.start_run() as run:
        MlflowParamsDataset().save({"data": {"dataset_run_id": "r1", "features": 3}, "x": [1, 2]})
    params = tracking.get_run(run.info.run_id).data.params
    assert params == {"data.dataset_run_id": "r1", "data.features": "3", "x": "[1, 2]"}
    with pytest.raises(DatasetError, match="No active MLflow run"):
        MlflowParamsDataset().save({"a": 1})


def test_nested_runs_dataset_logs_one_child_run_per_row(tracking, tmp_path):
    table = pd.DataFrame(
        {
            "trial": ["000", "001"],
            "state": ["COMPLETE", "FAIL"],
            "family": ["logistic", "hist_gbm"],
            "params": [{"C": 0.1}, {"max_iter": 50}],
            "cv_score": [0.05, float("nan")],
            "fold_scores": [[0.04, 0.06], []],
            "seconds": [1.0, 0.5],
        }
    )
    path = tmp_path / "models" / "search_trials.csv"
    dataset = MlflowNestedRunsDataset(
        filepath=str(path),
        name_column="trial",
        param_columns=["family", "params"],
        metric_columns=["cv_score", "fold_scores", "seconds"],
        run_name_prefix="trial-",
    )
    with mlflow.start_run() as parent:
        dataset.save(table)
    children = tracking.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        order_by=["attributes.run_name"],
    )
    assert [c.info.run_name for c in children] == ["trial-000", "trial-001"]
    first, failed = children
    assert first.data.params == {"family": "logistic", "params.C": "0.1"}
    assert first.data.metrics == {"cv_score": 0.05, "fold_scores_0": 0.04, "fold_scores_1": 0.06,
                                  "seconds": 1.0}  # fmt: skip
    assert first.data.tags["state"] == "COMPLETE"
    assert "cv_score" not in failed.data.metrics, "NaN is not logged"
    assert failed.data.tags["state"] == "FAIL"
    assert all(c.info.status == "FINISHED" for c in children)
    artifacts = [a.path for a in tracking.list_artifacts(parent.info.run_id)]
    assert artifacts == ["search_trials.csv"]
    assert dataset.load()["trial"].tolist() == [0, 1]
