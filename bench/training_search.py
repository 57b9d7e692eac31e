"""Model search cost per profile, side by side, on a gold model input.

For each profile named (default: quick, comprehensive, production from conf/base), runs the same
nodes the training pipeline runs — ``split_by_date`` then ``search_model`` — on one gold model
input, and prints trials, folds, wall seconds, seconds per trial by family, and the chosen model
with its walk-forward CV score. Profiles come from the conf of ``--env`` (the test env's
comprehensive is smaller than base's). ``--max-trials`` caps every profile (e.g. to take a cheap
look at production; the figure is then labelled capped).

It prints figures; it asserts nothing. Run from the project root after a run has built gold:

    make run && .venv/bin/python bench/training_search.py
    .venv/bin/python bench/training_search.py --max-trials 20     # production capped at 20
    .venv/bin/python bench/training_search.py --env test --profiles quick \
        --model-input data/test_stock_data/04_gold/model_input.parquet
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

import pandas as pd  # noqa: E402
from kedro.config import OmegaConfigLoader  # noqa: E402

from stock_ml.pipelines.training.nodes import search_model, split_by_date  # noqa: E402
from stock_ml.settings import CONFIG_LOADER_ARGS  # noqa: E402


def parameters(env: str) -> dict:
    loader_args = {k: v for k, v in CONFIG_LOADER_ARGS.items() if k != "default_run_env"}
    loader = OmegaConfigLoader(conf_source="conf", env=env, runtime_params={}, **loader_args)
    return loader["parameters"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="dev")
    parser.add_argument("--model-input", default="data/dev_stock_data/04_gold/model_input.parquet")
    parser.add_argument("--profiles", default="quick,comprehensive,production")
    parser.add_argument("--max-trials", type=int, default=None)
    args = parser.parse_args()

    params = parameters(args.env)
    model_input = pd.read_parquet(Path(args.model_input))
    horizon = params["feature_store"]["label"]["horizon"]
    training = params["training"]
    train, _, window = split_by_date(model_input, training["split"], horizon)
    print(
        f"model input {args.model_input}: {len(model_input):,} rows; train "
        f"{window['train_start']}..{window['train_end']} ({len(train):,} rows), "
        f"{train.shape[1] - 11} features; env {args.env}; {os.cpu_count()} CPUs"
    )
    header = f"{'profile':<16}{'trials':>7}{'folds':>6}{'seconds':>9}{'s/trial':>8}  best (CV)"
    print(header)
    print("-" * len(header))
    for name in args.profiles.split(","):
        search = dict(training["search"], profile=name)
        profile = dict(search["profiles"][name])
        label = name
        if args.max_trials and (profile.get("n_trials") or 10**9) > args.max_trials:
            profile["n_trials"] = args.max_trials
            label = f"{name} (capped)"
        search["profiles"] = {**search["profiles"], name: profile}
        started = time.perf_counter()
        trials, best = search_model(train, search, training["split"], horizon, training["seed"])
        seconds = time.perf_counter() - started
        print(
            f"{label:<16}{len(trials):>7}{profile['cv_folds']:>6}{seconds:>9.1f}"
            f"{seconds / len(trials):>8.2f}  {best['family']} ({best['objective']} "
            f"{best['cv_score']:.4f}) {best['params']}"
        )
        per_family = trials.groupby("family")["seconds"].agg(["count", "mean"])
        for family, row in per_family.iterrows():
            print(f"{'':<16}  {family:<14} {int(row['count']):>3} trials, {row['mean']:.2f} s each")


if __name__ == "__main__":
    main()
