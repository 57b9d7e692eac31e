"""Project hooks."""

from __future__ import annotations

import logging
from pathlib import Path

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

logger = logging.getLogger(__name__)


def _relative(where: str) -> str:
    """A path relative to the working directory (the project root) when it lies below it."""
    path = Path(where)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else where


class RunSummaryHook:
    """After a run, log where every persisted output and the MLflow store are.

    A person who just ran ``make run`` wants to know where to look; the catalog already knows.
    """

    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:
        lines = []
        for name in sorted(pipeline.all_outputs()):
            dataset = catalog.get(name)
            if dataset is None or isinstance(dataset, MemoryDataset):
                continue
            described = dataset._describe()  # noqa: SLF001 - the public repr truncates paths
            where = (
                described.get("filepath") or described.get("path") or described.get("model_name")
            )
            if where:
                lines.append(f"{name}: {_relative(where)}")
        import mlflow  # imported here: only runs that finish need it

        lines.append(f"mlflow tracking store: {mlflow.get_tracking_uri()}")
        for line in ["Outputs of this run:", *lines]:
            logger.info(line)
