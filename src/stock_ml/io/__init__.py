"""The project's custom datasets: only what kedro-datasets has no type for (each says why)."""

from stock_ml.io.atomic_parquet_dataset import AtomicParquetDataset
from stock_ml.io.registered_model_dataset import RegisteredModelDataset, ServingModel
from stock_ml.io.stored_state_dataset import StoredStateDataset
from stock_ml.io.yahoo_prices_dataset import YahooPriceFetcher, YahooPricesDataset

__all__ = [
    "AtomicParquetDataset",
    "RegisteredModelDataset",
    "ServingModel",
    "StoredStateDataset",
    "YahooPriceFetcher",
    "YahooPricesDataset",
]
