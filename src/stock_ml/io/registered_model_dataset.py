"""A model in the MLflow registry, addressed by alias.

kedro-mlflow's ``MlflowModelTrackingDataset`` logs a model but cannot move an alias, and its
``MlflowModelRegistryDataset`` loads by alias but forgets which version it loaded. Inference must
record the version that served each prediction, so this dataset does both ends:

* save: log the scikit-learn model in the active MLflow run (kedro-mlflow opened it), register a
  new version under ``model_name``, point every alias in ``aliases`` at it;
* load: resolve ``models:/<model_name>@<alias>``; return the model, its name, version and run id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kedro.io import AbstractDataset, DatasetError


@dataclass(frozen=True)
class ServingModel:
    """A loaded registered model and the registry coordinates that say which one it is."""

    model: Any
    name: str
    alias: str
    version: int
    run_id: str


class RegisteredModelDataset(AbstractDataset[Any, ServingModel]):
    def __init__(
        self,
        model_name: str,
        alias: str = "champion",
        aliases: list[str] | None = None,
        artifact_name: str = "model",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Args:
            model_name: registered model name (per env, from conf).
            alias: alias that ``load`` resolves.
            aliases: aliases that ``save`` moves to the new version (default: ``[alias]``).
            artifact_name: name of the model artifact inside the run.
            metadata: Kedro metadata (e.g. kedro-viz layer); not used by the dataset.
        """
        self._model_name = model_name
        self._alias = alias
        self._aliases = list(aliases) if aliases is not None else [alias]
        self._artifact_name = artifact_name
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model_name": f"models:/{self._model_name}@{self._alias}", "aliases": self._aliases}

    def _save(self, model: Any) -> None:
        import mlflow
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        features = getattr(model, "feature_names_in_", None)
        if features is None:
            raise DatasetError(
                f"Model for '{self._model_name}' was fitted without column names; "
                "fit it on a DataFrame so its signature names the features."
            )
        signature = ModelSignature(
            inputs=Schema([ColSpec("double", str(name)) for name in features]),
            outputs=Schema([ColSpec("double")]),
        )
        info = mlflow.sklearn.log_model(
            model,
            name=self._artifact_name,
            signature=signature,
            registered_model_name=self._model_name,
        )
        client = mlflow.MlflowClient()
        for alias in self._aliases:
            client.set_registered_model_alias(
                self._model_name, alias, str(info.registered_model_version)
            )

    def _load(self) -> ServingModel:
        import mlflow

        version = self._resolve_alias()
        model = mlflow.sklearn.load_model(f"models:/{self._model_name}@{self._alias}")
        return ServingModel(
            model=model,
            name=self._model_name,
            alias=self._alias,
            version=int(version.version),
            run_id=version.run_id,
        )

    def _exists(self) -> bool:
        try:
            self._resolve_alias()
        except DatasetError:
            return False
        return True

    def _resolve_alias(self):
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            return mlflow.MlflowClient().get_model_version_by_alias(self._model_name, self._alias)
        except MlflowException as error:
            raise DatasetError(
                f"No version of registered model '{self._model_name}' has alias "
                f"'{self._alias}' in {mlflow.get_tracking_uri()}: run the training pipeline first "
                f"(kedro run --pipeline retraining). MLflow said: {error}"
            ) from error
