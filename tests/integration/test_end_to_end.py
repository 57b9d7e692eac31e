"""`kedro run --env test` in a scratch copy: every layer written, with the right keys and values."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow.parquet as pq
import pytest
from kedro.config import OmegaConfigLoader

import stock_ml
from stock_ml.gold_schema import feature_columns
from stock_ml.pipelines.feature_store.nodes import feature_set_hash
from stock_ml.pipelines.feature_store.registry import feature_names
from stock_ml.settings import CONFIG_LOADER_ARGS
from tests.conftest import E2E_RUN_ID
from tests.integration.project import env_outputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def params(test_env_project: Path) -> dict:
    loader = OmegaConfigLoader(
        conf_source=str(test_env_project / "conf"),
        env="test",
        runtime_params={},
        **{k: v for k, v in CONFIG_LOADER_ARGS.items() if k != "default_run_env"},
    )
    return loader["parameters"]


@pytest.fixture(scope="module")
def root(test_env_project: Path) -> Path:
    return test_env_project / "data" / "test_stock_data"


def _run_file(root: Path, table: str) -> Path:
    """The one partition the e2e run wrote under a per-run table (bronze, quarantine, health)."""
    (path,) = (root / table).glob(f"ingest_date=*/run_id={E2E_RUN_ID}.parquet")
    return path


def test_bronze_keeps_source_text_and_lineage(root: Path, params: dict) -> None:
    synthetic = params["ingest"]["source"]["synthetic"]
    files = sorted((root / "02_bronze" / "prices").rglob("*.parquet"))
    assert files == [_run_file(root, "02_bronze/prices")], "one ingest run → one bronze file"
    assert files[0].parent.name.startswith("ingest_date=")
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "ZSTD"
    bronze = pd.read_parquet(files[0])
    assert len(bronze) == len(synthetic["symbols"]) * synthetic["sessions"]
    assert set(bronze["ingest_run_id"]) == {E2E_RUN_ID}
    assert set(bronze["source"]) == {"synthetic"}
    assert set(bronze["ingest_mode"]) == {"incremental"}, "the default mode; nothing stored yet"
    assert bronze["close"].map(type).eq(str).all(), "bronze stores what the source said, as text"


def test_every_bronze_row_is_accounted_for(root: Path, params: dict) -> None:
    bronze = pd.read_parquet(_run_file(root, "02_bronze/prices"))
    (silver_version,) = (root / "03_silver" / "prices.parquet").iterdir()
    silver = pd.read_parquet(silver_version / "prices.parquet")
    quarantine = pd.read_parquet(_run_file(root, "03_silver/quarantine"))
    health = pd.read_parquet(_run_file(root, "03_silver/data_health"))
    assert len(bronze) == len(silver) + len(quarantine) + health["exact_duplicates"].sum()
    assert health["rows_read"].sum() == len(bronze)
    assert (health["rows_read"] == health["kept"] + health["quarantined"]).all()
    assert quarantine.empty, "the synthetic universe is clean and on the XWAR calendar"
    warsaw = params["universe"]["groups"]["warsaw"]
    assert sorted(health["symbol"]) == sorted(warsaw["symbols"])
    assert set(health["group"]) == {"warsaw"}, "the disabled us_markets group is not expected"
    assert (health["missing_sessions"] == 0).all()
    # the synthetic history ends long before the run date: every symbol is stale, and says so
    assert set(health["status"]) == {"stale"}
    assert (health["sessions_behind"] > 0).all()


def test_silver_is_typed_unique_and_sorted(root: Path) -> None:
    (silver_version,) = (root / "03_silver" / "prices.parquet").iterdir()
    silver = pd.read_parquet(silver_version / "prices.parquet")
    assert not silver.duplicated(["symbol", "date"]).any()
    assert silver.equals(silver.sort_values(["symbol", "date"]).reset_index(drop=True))
    assert pd.api.types.is_datetime64_any_dtype(silver["date"])
    assert all(pd.api.types.is_float_dtype(silver[c]) for c in ["open", "high", "low", "close"])


def test_gold_features_labels_and_model_input(root: Path, params: dict) -> None:
    features = pd.read_parquet(root / "04_gold" / "features.parquet")
    labels = pd.read_parquet(root / "04_gold" / "labels.parquet")
    model_input = pd.read_parquet(root / "04_gold" / "model_input.parquet")
    horizon = params["feature_store"]["label"]["horizon"]
    conf = params["feature_store"]["features"]
    names = feature_names(conf["families"], conf["windows"])
    ranked = [f"{c}_csrank" for c in conf["cross_sectional_ranks"]]
    assert list(features.columns) == [
        "symbol",
        "date",
        *names,
        *ranked,
        "dataset_run_id",
        "feature_schema_hash",
    ]
    assert len(names) == 163, "Alpha158 (158) + RSI, MACD (3), Bollinger position"
    assert set(features["dataset_run_id"]) == {E2E_RUN_ID}
    assert set(features["feature_schema_hash"]) == {feature_set_hash(conf)}
    assert not features.duplicated(["symbol", "date"]).any()
    assert set(labels["horizon"]) == {horizon}
    # the last `horizon` sessions of each symbol have no realised label: they are to be scored
    tail = labels.groupby("symbol").tail(horizon)
    assert tail["label_up"].isna().all()
    assert labels.groupby("symbol").head(-horizon)["label_up"].notna().all()
    assert len(model_input) == len(features)
    assert not model_input.loc[model_input["is_trainable"], "label_up"].isna().any()


def test_predictions_are_keyed_and_name_the_champion(root: Path, params: dict) -> None:
    partitions = sorted((root / "07_predictions" / "predictions").glob("as_of_date=*/*.parquet"))
    assert [p.name for p in partitions] == ["model_version=1.parquet"] * len(partitions)
    assert len(partitions) == params["inference"]["score_sessions"]
    predictions = pd.concat(pd.read_parquet(p) for p in partitions)
    assert not predictions.duplicated(["target_prediction_date", "symbol"]).any()
    assert set(predictions["model_version"]) == {1}
    assert set(predictions["model_alias"]) == {"champion"}
    assert predictions["score"].between(0, 1).all()
    assert (predictions["target_prediction_date"] > predictions["as_of_date"]).all()
    assert set(predictions["role"]) == {"serving"}, "the bootstrap champion has no challenger"
    api = root / "07_predictions" / "api"
    latest = json.loads((api / "latest.json").read_text())
    history = sorted(p.stem for p in (api / "historical").glob("*.json"))
    # one run publishes one day: its latest as-of date (earlier files are earlier days' record)
    assert history == [partitions[-1].parent.name.removeprefix("as_of_date=")]
    assert latest["as_of_date"] == history[-1] and latest["model_version"] == 1
    assert len(latest["predictions"]) == predictions["symbol"].nunique()


def test_monitoring_decides_whether_to_retrain(root: Path) -> None:
    verdict = json.loads((root / "08_reporting" / "retrain_decision.json").read_text())
    assert verdict["run_id"] == E2E_RUN_ID
    assert verdict["checks"]["champion_version"] == 1
    suppressed = "suppressed_by" in verdict["checks"]
    assert verdict["retrain_required"] is (bool(verdict["reasons"]) and not suppressed)
    # the champion was trained in this very run: any reason waits out the cooldown
    assert suppressed is bool(verdict["reasons"])
    shadow = json.loads((root / "06_models" / "shadow_promotion_decision.json").read_text())
    assert shadow["action"] == "none", "the bootstrap champion has no challenger in shadow"


def test_mlflow_store_registry_and_run_are_per_env(root: Path, params: dict) -> None:
    assert (root / "mlflow.db").is_file()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("stock_ml_test")
    assert experiment is not None
    assert experiment.artifact_location.startswith((root / "mlartifacts").as_uri())
    # test env: the first model becomes champion by the bootstrap rule, and says so
    champion = client.get_model_version_by_alias("test_stock_ml_direction", "champion")
    assert int(champion.version) == 1
    assert champion.tags["promotion_action"] == "bootstrap"
    assert champion.tags["dataset_run_id"] == E2E_RUN_ID
    run = client.get_run(champion.run_id)
    metrics = run.data.metrics
    for scorer in ["model", "always_up", "momentum"]:
        assert 0.0 <= metrics[f"training_metrics.{scorer}.accuracy"] <= 1.0
        assert f"training_metrics.{scorer}.sharpe" in metrics
    assert "training_metrics.model.rank_ic_tstat_nw" in metrics
    assert metrics["promotion_metrics.promoted"] == 1.0
    logged = run.data.params
    assert logged["run.id"] == E2E_RUN_ID
    assert logged["training.search.profile"] == "comprehensive", "the test env's profile"
    assert logged["data.dataset_run_id"] == E2E_RUN_ID
    assert logged["search.profile"] == "comprehensive"
    assert logged["window.embargo_sessions"] == "7"
    # the scratch copy has no .git: the code version is the package version alone
    assert logged["run.code_version"] == champion.tags["code_version"] == stock_ml.__version__
    artifacts = {a.path for a in client.list_artifacts(champion.run_id)}
    assert {
        "data_lineage.json",
        "model_card.md",
        "promotion_decision.json",
        "holdout_report.csv",
        "search_trials.csv",
        "best_model_config.json",
    } <= artifacts
    lineage = json.loads(
        Path(client.download_artifacts(champion.run_id, "data_lineage.json")).read_text()
    )
    model_input = pd.read_parquet(root / "04_gold" / "model_input.parquet")
    assert lineage["dataset_run_id"] == E2E_RUN_ID
    assert lineage["feature_schema_hash"] == model_input["feature_schema_hash"].iloc[0]
    assert lineage["features"] == feature_columns(model_input)
    trials = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{champion.run_id}'"
    )
    search = params["training"]["search"]
    assert len(trials) == search["profiles"]["comprehensive"]["n_trials"]
    families = {t.data.params["family"] for t in trials}
    assert families <= {"logistic", "hist_gbm", "random_forest", "extra_trees"}


def test_monitoring_tables_and_plot(root: Path) -> None:
    performance = pd.read_csv(root / "08_reporting" / "monitoring_performance.csv")
    drift = pd.read_csv(root / "08_reporting" / "monitoring_drift.csv")
    features = pd.read_parquet(root / "04_gold" / "features.parquet")
    assert len(performance) > 0
    assert performance["accuracy"].between(0, 1).all()
    assert (performance["correct"] <= performance["matured_predictions"]).all()
    assert sorted(drift.loc[drift["kind"] == "feature", "name"]) == sorted(
        feature_columns(features)
    )
    assert drift.loc[drift["kind"] == "prediction", "name"].tolist() == ["score"]
    assert (drift["psi"] >= 0).all() and drift["ks_pvalue"].between(0, 1).all()
    assert set(drift["model_version"]) == {1}
    (history,) = (root / "08_reporting" / "drift_history").glob("run_date=*.parquet")
    pd.testing.assert_frame_equal(
        pd.read_parquet(history).reset_index(drop=True)[["name", "psi"]], drift[["name", "psi"]]
    )
    png = (root / "08_reporting" / "monitoring_history.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    html = (root / "08_reporting" / "monitoring_history.html").read_text()
    assert "stock_ml monitoring history" in html and "model v1 (serving)" in html


def test_other_envs_are_untouched(test_env_project: Path) -> None:
    assert env_outputs(test_env_project, "dev") == []
    assert env_outputs(test_env_project, "prod") == []
