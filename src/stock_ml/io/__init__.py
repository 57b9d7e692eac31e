"""The project's one custom dataset module (kedro-datasets has no registry-alias model dataset)."""

from stock_ml.io.registered_model_dataset import RegisteredModelDataset, ServingModel

__all__ = ["RegisteredModelDataset", "ServingModel"]
