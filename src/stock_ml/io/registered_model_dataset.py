"""Models in the MLflow registry: one version addressed by alias, and the registry's alias state.

kedro-mlflow's ``MlflowModelTrackingDataset`` logs a model but cannot move an alias, and its
``MlflowModelRegistryDataset`` loads by alias but forgets which version it loaded. Inference must
record the version that served each prediction, and promotion must move aliases only after its
gates pass, so this module has two datasets:

* ``RegisteredModelDataset`` — save: log the scikit-learn model (signature inferred from an input
  example, pyfunc predicting probabilities) in the active MLflow run, register a new version under
  ``model_name``, tag it, point ``aliases`` at it. Load: resolve ``models:/<name>@<alias>`` and
  return the model with its version, run id and tags (or None when ``optional`` and unset).
* ``ModelRegistryDataset`` — load: where every alias of a model points; save: an ``AliasUpdate``
  (alias moves and deletions, version tags). The promotion and rollback nodes decide; this applies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from stock_ml.models import AliasUpdate, ModelCandidate, RegistryState, ServingModel


def _client():
    import mlflow

    return mlflow.MlflowClient()


def _registered_model(name: str):
    """The registered model, or None when no version was ever registered under ``name``."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_registered_model(name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


class RegisteredModelDataset(AbstractDataset[ModelCandidate, ServingModel | None]):
    def __init__(
        self,
        model_name: str,
        alias: str = "champion",
        aliases: list[str] | None = None,
        artifact_name: str = "model",
        optional: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Args:
            model_name: registered model name (per env, from conf).
            alias: alias that ``load`` resolves.
            aliases: aliases that ``save`` moves to the new version (default: ``[alias]``).
            artifact_name: name of the model artifact inside the run.
            optional: ``load`` returns None instead of failing when the alias is unset (a
                training run compares against the champion only if there is one).
            metadata: Kedro metadata (e.g. kedro-viz layer); not used by the dataset.
        """
        self._model_name = model_name
        self._alias = alias
        self._aliases = list(aliases) if aliases is not None else [alias]
        self._artifact_name = artifact_name
        self._optional = optional
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "model_name": f"models:/{self._model_name}@{self._alias}",
            "aliases": self._aliases,
            "optional": self._optional,
        }

    def _save(self, candidate: ModelCandidate) -> None:
        import mlflow
        from mlflow.models import infer_signature

        if not isinstance(candidate, ModelCandidate):
            raise DatasetError(
                f"'{self._model_name}' saves a stock_ml.models.ModelCandidate (model, input "
                f"example, tags), got {type(candidate).__name__}"
            )
        example = candidate.input_example
        if list(getattr(candidate.model, "feature_names_in_", [])) != list(example.columns):
            raise DatasetError(
                f"'{self._model_name}': the input example's columns are not the features the "
                "model was fitted on"
            )
        signature = infer_signature(example, candidate.model.predict_proba(example))
        info = mlflow.sklearn.log_model(
            candidate.model,
            skops_trusted_types=_own_types(candidate.model),
            name=self._artifact_name,
            signature=signature,
            input_example=example,
            pyfunc_predict_fn="predict_proba",
            # Named, not inferred: inference loads the model in a subprocess (about 10 s a save)
            # and would only find these.
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
            registered_model_name=self._model_name,
        )
        version = str(info.registered_model_version)
        client = _client()
        for key, value in candidate.tags.items():
            client.set_model_version_tag(self._model_name, version, key, str(value))
        if candidate.description:
            client.update_model_version(self._model_name, version, candidate.description)
        for alias in self._aliases:
            client.set_registered_model_alias(self._model_name, alias, version)

    def _load(self) -> ServingModel | None:
        import mlflow

        version = self._resolve_alias()
        if version is None:
            return None
        model = mlflow.sklearn.load_model(f"models:/{self._model_name}/{version.version}")
        return ServingModel(
            model=model,
            name=self._model_name,
            alias=self._alias,
            version=int(version.version),
            run_id=version.run_id,
            tags=dict(version.tags),
        )

    def _exists(self) -> bool:
        registered = _registered_model(self._model_name)
        return registered is not None and self._alias in registered.aliases

    def _resolve_alias(self):
        """The model version behind the alias; None (optional) or a clear error when unset."""
        import mlflow

        registered = _registered_model(self._model_name)
        if registered is not None and self._alias in registered.aliases:
            return _client().get_model_version(
                self._model_name, str(registered.aliases[self._alias])
            )
        if self._optional:
            return None
        raise DatasetError(
            f"No version of registered model '{self._model_name}' has alias '{self._alias}' in "
            f"{mlflow.get_tracking_uri()}: run the training pipeline first "
            "(kedro run --pipeline retraining) or roll back (kedro run --pipeline rollback)"
        )


def _own_types(model: Any) -> list[str]:
    """The non-default types in a model this run fitted itself, to trust on reload.

    MLflow 3 saves scikit-learn models with skops, which refuses types outside its safe list
    (tree ensembles' ``Tree`` among them) unless they are named at save time; the names are kept
    in the model's MLmodel file, so a later load trusts exactly these and nothing else.
    """
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


class ModelRegistryDataset(AbstractDataset[AliasUpdate, RegistryState]):
    def __init__(self, model_name: str, metadata: dict[str, Any] | None = None) -> None:
        """
        Args:
            model_name: registered model name (per env, from conf).
            metadata: Kedro metadata (e.g. kedro-viz layer); not used by the dataset.
        """
        self._model_name = model_name
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model_name": f"models:/{self._model_name}"}

    def _load(self) -> RegistryState:
        registered = _registered_model(self._model_name)
        if registered is None:
            return RegistryState(model_name=self._model_name, aliases={})
        versions = _client().search_model_versions(f"name = '{self._model_name}'")
        return RegistryState(
            model_name=self._model_name,
            aliases={alias: int(v) for alias, v in registered.aliases.items()},
            version_tags={int(v.version): dict(v.tags) for v in versions},
            version_created={
                int(v.version): datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).isoformat()
                for v in versions
            },
        )

    def _save(self, update: AliasUpdate) -> None:
        client = _client()
        registered = _registered_model(self._model_name)
        if registered is None and (update.set_aliases or update.version_tags):
            raise DatasetError(f"Registered model '{self._model_name}' does not exist")
        current = dict(registered.aliases) if registered is not None else {}
        for version, tags in update.version_tags.items():
            for key, value in tags.items():
                client.set_model_version_tag(self._model_name, str(version), key, str(value))
        for alias in update.delete_aliases:
            if alias in current:
                client.delete_registered_model_alias(self._model_name, alias)
        for alias, version in update.set_aliases.items():
            client.set_registered_model_alias(self._model_name, alias, str(version))
