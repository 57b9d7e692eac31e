"""The project's custom datasets: only what kedro-datasets has no type for (each says why)."""

from stock_ml.io.atomic_json_dataset import AtomicJSONDataset
from stock_ml.io.atomic_parquet_dataset import AtomicParquetDataset
from stock_ml.io.mlflow_run_datasets import MlflowNestedRunsDataset, MlflowParamsDataset
from stock_ml.io.postgres_statements_dataset import PostgresStatementsDataset
from stock_ml.io.postgres_table_dataset import PostgresTableDataset
from stock_ml.io.prediction_log_dataset import PredictionLogDataset
from stock_ml.io.registered_model_dataset import ModelRegistryDataset, RegisteredModelDataset
from stock_ml.io.stored_state_dataset import StoredStateDataset
from stock_ml.io.yahoo_prices_dataset import YahooPriceFetcher, YahooPricesDataset
from stock_ml.models import ServingModel

__all__ = [
    "AtomicJSONDataset",
    "AtomicParquetDataset",
    "MlflowNestedRunsDataset",
    "MlflowParamsDataset",
    "ModelRegistryDataset",
    "PostgresStatementsDataset",
    "PostgresTableDataset",
    "PredictionLogDataset",
    "RegisteredModelDataset",
    "ServingModel",
    "StoredStateDataset",
    "YahooPriceFetcher",
    "YahooPricesDataset",
]
