"""Model families declared in conf, and a seeded Optuna search over family and hyperparameters.

Each family in ``training.search.families`` names a scikit-learn classifier by import path (the
Qlib habit of declaring components in config), its fixed arguments, whether it needs scaling, and
its search space. Optuna samples the family first, then that family's space (define-by-run, so
the spaces stay conditional). With a trial-bounded profile the search is reproducible: the TPE
sampler is seeded, trials run one at a time, and every estimator gets the same ``random_state``.

Why not FLAML: it budgets by wall time, which makes the chosen model depend on machine load; a
trial count does not.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import time
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from stock_ml.pipelines.training.cv import Fold
from stock_ml.pipelines.training.evaluation import objective_score

logger = logging.getLogger(__name__)

SPACE_TYPES = {"float", "int", "categorical"}


def estimator_class(path: str) -> type:
    """Import ``package.module.Class`` and check it is a probabilistic classifier."""
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"training.search: cannot import estimator '{path}': {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, ClassifierMixin)):
        raise ValueError(f"training.search: '{path}' is not a scikit-learn classifier")
    if not hasattr(cls, "predict_proba"):
        raise ValueError(f"training.search: '{path}' has no predict_proba (scores are needed)")
    return cls


def build_estimator(family: dict, params: dict, seed: int) -> Pipeline:
    """One family's classifier with ``params``, seeded, behind a scaler where the family says."""
    cls = estimator_class(family["estimator"])
    arguments = {**family.get("fixed", {}), **params}
    if "random_state" in inspect.signature(cls).parameters:
        arguments["random_state"] = seed
    steps = [("scale", StandardScaler())] if family.get("scale", False) else []
    steps.append(("classify", cls(**arguments)))
    return Pipeline(steps)


def suggest(trial: optuna.Trial, family_name: str, space: dict) -> dict[str, Any]:
    """Sample one value per hyperparameter of a family's space (names prefixed by family)."""
    params = {}
    for name, spec in space.items():
        kind = spec.get("type")
        if kind not in SPACE_TYPES:
            raise ValueError(
                f"training.search.families.{family_name}.space.{name}: type must be one of "
                f"{sorted(SPACE_TYPES)}, got {kind!r}"
            )
        key = f"{family_name}.{name}"
        if kind == "categorical":
            params[name] = trial.suggest_categorical(key, list(spec["choices"]))
        elif kind == "int":
            params[name] = trial.suggest_int(
                key, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log", False))
            )
        else:
            params[name] = trial.suggest_float(
                key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False))
            )
    return params


def resolve_profile(search: dict) -> dict:
    """The profile the env (or the run's ``search_profile`` param) chose, checked against conf."""
    name = search["profile"]
    profiles = search["profiles"]
    if name not in profiles:
        raise ValueError(
            f"training.search.profile '{name}' is not one of {sorted(profiles)} "
            "(conf/<env>/parameters_training.yml)"
        )
    profile = {"name": name, **profiles[name]}
    unknown = sorted(set(profile["families"]) - set(search["families"]))
    if unknown:
        raise ValueError(f"search profile '{name}' names undeclared model families {unknown}")
    if profile.get("n_trials") is None and profile.get("timeout_seconds") is None:
        raise ValueError(f"search profile '{name}' needs n_trials, timeout_seconds or both")
    return profile


def cross_validate(
    estimator_factory, features: pd.DataFrame, rows: pd.DataFrame, folds: list[Fold], objective
) -> list[float]:
    """Objective on each fold's validation rows, fitting a fresh estimator per fold."""
    label = rows["label_up"].astype(int).to_numpy()
    scores = []
    for fold in folds:
        estimator = estimator_factory()
        estimator.fit(features.iloc[fold.train], label[fold.train])
        proba = estimator.predict_proba(features.iloc[fold.validation])[:, 1]
        scores.append(objective_score(objective, rows.iloc[fold.validation], proba))
    return scores


def run_search(
    rows: pd.DataFrame, features: list[str], folds: list[Fold], search: dict, seed: int
) -> tuple[pd.DataFrame, dict]:
    """Search families × hyperparameters; return every trial and the best configuration.

    The objective (``search.objective``) is averaged over the walk-forward folds; a trial whose
    fit fails is recorded as failed with its error, never silently skipped.
    """
    profile = resolve_profile(search)
    families = {name: search["families"][name] for name in profile["families"]}
    objective_name = search["objective"]
    matrix = rows[features]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=int(profile.get("startup_trials", 10))
        ),
        study_name=f"stock_ml-{profile['name']}",
    )

    def objective(trial: optuna.Trial) -> float:
        family_name = trial.suggest_categorical("family", list(families))
        family = families[family_name]
        params = suggest(trial, family_name, family.get("space", {}))
        started = time.perf_counter()
        try:
            scores = cross_validate(
                lambda: build_estimator(family, params, seed), matrix, rows, folds, objective_name
            )
        except (ValueError, ArithmeticError) as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            raise
        trial.set_user_attr("fold_scores", scores)
        trial.set_user_attr("params", params)
        trial.set_user_attr("seconds", time.perf_counter() - started)
        return float(np.mean(scores))

    started = time.perf_counter()
    study.optimize(
        objective,
        n_trials=profile.get("n_trials"),
        timeout=profile.get("timeout_seconds"),
        n_jobs=1,
        catch=(ValueError, ArithmeticError),
    )
    elapsed = time.perf_counter() - started
    trials = trials_table(study, objective_name)
    completed = trials[trials["state"] == "COMPLETE"]
    if completed.empty:
        raise RuntimeError(
            f"search profile '{profile['name']}': no trial completed; first error: "
            f"{trials['error'].dropna().head(1).tolist()}"
        )
    best = study.best_trial
    best_config = {
        "family": best.params["family"],
        "estimator": families[best.params["family"]]["estimator"],
        "params": best.user_attrs["params"],
        "objective": objective_name,
        "cv_score": float(best.value),
        "cv_fold_scores": list(best.user_attrs["fold_scores"]),
        "trial": best.number,
        "profile": profile["name"],
        "n_trials": len(trials),
        "search_seconds": elapsed,
        "seed": seed,
    }
    logger.info(
        "Search '%s': %d trials in %.1f s; best #%d %s %s = %.4f %s",
        profile["name"],
        len(trials),
        elapsed,
        best.number,
        best_config["family"],
        objective_name,
        best.value,
        best_config["params"],
    )
    return trials, best_config


def trials_table(study: optuna.Study, objective_name: str) -> pd.DataFrame:
    """One row per trial: family, its params, per-fold and mean objective, state and time."""
    records = []
    for trial in study.trials:
        records.append(
            {
                "trial": trial.number,
                "state": trial.state.name,
                "family": trial.params.get("family"),
                "params": trial.user_attrs.get("params", {}),
                "objective": objective_name,
                "cv_score": trial.value,
                "fold_scores": trial.user_attrs.get("fold_scores", []),
                "seconds": trial.user_attrs.get("seconds"),
                "error": trial.user_attrs.get("error"),
            }
        )
    return pd.DataFrame.from_records(records)
