"""The project's config loader: Kedro's OmegaConfigLoader, with credentials from conf/local too.

A Kedro project reads ``conf/base`` plus one run env. Kedro's default run env is ``local``, which
is where credentials live; this project's run envs are dev, test and prod, so conf/local would
never be read. Credentials (and only credentials) are therefore also read from conf/local, on top
of base and the run env, so a secret can live in the git-ignored conf/local/credentials.yml or in
an environment variable named by conf/base/credentials.yml (``${oc.env:...}``), never in git.

Airflow sections named ``training_{symbol}`` are expanded per symbol, and ``model_scope.per_symbol``
is merged over the env's blocks (stock_ml.model_scope).
Each loader also records itself as the env whose pipelines are registered (per-symbol pipelines
exist per env; see stock_ml.model_scope).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

from stock_ml.model_scope import (
    expand_symbol_sections,
    record_active_loader,
    scope_from_parameters,
    with_per_symbol_blocks,
)

LOCAL_ENV = "local"


class StockMLConfigLoader(OmegaConfigLoader):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        record_active_loader(self)

    def __getitem__(self, key: str) -> Any:
        config = super().__getitem__(key)
        if key == "parameters":
            return with_per_symbol_blocks(config)
        if key == "airflow":
            # DAG sections named training_{symbol}: one per symbol of a per_symbol env.
            return expand_symbol_sections(config, scope_from_parameters(self["parameters"]))
        if key != "credentials" or self.env == LOCAL_ENV:
            return config
        local = Path(self.conf_source) / LOCAL_ENV
        if not any(local.glob("credentials*")):
            return config
        local_loader = OmegaConfigLoader(
            self.conf_source, base_env=LOCAL_ENV, default_run_env=LOCAL_ENV
        )
        # conf/local wins, entry by entry, as the run env wins over base.
        return {**config, **local_loader["credentials"]}
