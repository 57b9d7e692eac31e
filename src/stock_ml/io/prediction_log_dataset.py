"""A partitioned log that may be empty: PartitionedDataset that loads ``{}`` instead of failing.

The prediction log starts empty and stays empty while an env has no champion (inference scores
nothing then). Monitoring and the API export must still run and say so; kedro-datasets'
PartitionedDataset raises "No partitions found" on an empty folder, which would stop the daily run
before its decision to retrain could be made.
"""

from __future__ import annotations

from typing import Any

from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset


class PredictionLogDataset(PartitionedDataset):
    def load(self) -> dict[str, Any]:
        try:
            return super().load()
        except DatasetError as error:
            if "No partitions found" in str(error):
                return {}
            raise
