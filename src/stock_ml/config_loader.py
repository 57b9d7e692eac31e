"""The project's config loader: Kedro's OmegaConfigLoader, with credentials from conf/local too.

A Kedro project reads ``conf/base`` plus one run env. Kedro's default run env is ``local``, which
is where credentials live; this project's run envs are dev, test and prod, so conf/local would
never be read. Credentials (and only credentials) are therefore also read from conf/local, on top
of base and the run env, so a secret can live in the git-ignored conf/local/credentials.yml or in
an environment variable named by conf/base/credentials.yml (``${oc.env:...}``), never in git.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

LOCAL_ENV = "local"


class StockMLConfigLoader(OmegaConfigLoader):
    def __getitem__(self, key: str) -> Any:
        config = super().__getitem__(key)
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
