"""What the model-registry datasets hand to nodes and take from them.

Plain dataclasses with no MLflow or kedro-datasets import, so pipeline modules can name them
without loading the I/O stack (``stock_ml.io`` pulls kedro-datasets' pandas and sqlalchemy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# Registry aliases, and the role a logged prediction played (served to users, or shadow only).
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
SERVING, SHADOW = "serving", "shadow"


def with_roles(predictions: pd.DataFrame) -> pd.DataFrame:
    """Prediction-log rows with a ``role``: rows logged before shadow scoring existed served."""
    role = predictions["role"] if "role" in predictions else pd.Series(SERVING, predictions.index)
    return predictions.assign(role=role.fillna(SERVING))


def of_model(table: pd.DataFrame, model_name: str) -> pd.DataFrame:
    """One registered model's rows of a table naming ``model_name`` (the performance log):
    per-symbol models share it, and their version numbers collide (AAA's v1 is not BBB's v1)."""
    return table[table["model_name"] == model_name]


@dataclass(frozen=True)
class ServingModel:
    """A loaded registered model and the registry coordinates that say which one it is."""

    model: Any
    name: str
    alias: str
    version: int
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelCandidate:
    """A fitted model ready to register: an input example for its signature, and version tags."""

    model: Any
    input_example: pd.DataFrame
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class RegistryState:
    """Where a registered model's aliases point, and its versions' tags."""

    model_name: str
    aliases: dict[str, int]
    version_tags: dict[int, dict[str, str]] = field(default_factory=dict)
    version_created: dict[int, str] = field(default_factory=dict)  # ISO time, UTC

    def version_of(self, alias: str) -> int | None:
        return self.aliases.get(alias)


@dataclass(frozen=True)
class AliasUpdate:
    """Alias moves and version tags to apply to one registered model, in one save."""

    set_aliases: dict[str, int] = field(default_factory=dict)
    delete_aliases: list[str] = field(default_factory=list)
    version_tags: dict[int, dict[str, str]] = field(default_factory=dict)
