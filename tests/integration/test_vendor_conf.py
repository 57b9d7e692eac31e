"""A new vendor's export needs conf only: the bundled sample rewritten as one long CSV with other
headers, another delimiter, decimal commas and day-first dates gives the same silver table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.integration.project import BIN, copy_project, run

pytestmark = pytest.mark.slow

VENDOR_CONF = {
    "globals.yml": "env: vendor_long\nschema: vendor_long_stock_data\n",
    "catalog.yml": """
raw_price_files:
  type: partitions.PartitionedDataset
  path: data/01_raw/vendor_long
  filename_suffix: .txt
  dataset:
    type: pandas.CSVDataset
    load_args: {sep: ";", dtype: str, keep_default_na: false}
""",
    "parameters_ingest.yml": """
ingest:
  source:
    csv_format: vendor_long
  csv_formats:
    vendor_long:
      layout: long
      columns: {Ticker: symbol, Day: date, O: open, H: high, L: low, C: close, Vol: volume}
""",
    "parameters_silver.yml": """
silver:
  parsing: {date_format: "%d.%m.%Y", decimal: ","}
""",
}


def _write_long_export(project: Path) -> int:
    """The sample as another vendor would send it: one long file, every convention different."""
    frames = []
    for path in sorted((project / "data/01_raw/wig20").glob("*_d.csv")):
        raw = pd.read_csv(path, dtype=str)
        frames.append(
            pd.DataFrame(
                {
                    "Day": pd.to_datetime(raw["Data"]).dt.strftime("%d.%m.%Y"),
                    "Ticker": path.stem.removesuffix("_d").lower(),
                    **{
                        short: raw[polish].str.replace(".", ",", regex=False)
                        for short, polish in [
                            ("O", "Otwarcie"),
                            ("H", "Najwyzszy"),
                            ("L", "Najnizszy"),
                            ("C", "Zamkniecie"),
                            ("Vol", "Wolumen"),
                        ]
                    },
                }
            )
        )
    export = pd.concat(frames).sample(frac=1.0, random_state=0)  # vendor order is no order
    folder = project / "data/01_raw/vendor_long"
    folder.mkdir()
    export.to_csv(folder / "all_prices.txt", sep=";", index=False)
    return len(export)


def test_long_format_vendor_needs_conf_only(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    rows = _write_long_export(project)
    (project / "conf/vendor_long").mkdir()
    for name, text in VENDOR_CONF.items():
        (project / "conf/vendor_long" / name).write_text(text)

    for env in ("dev", "vendor_long"):
        run([str(BIN / "kedro"), "run", "--env", env, "--pipelines", "ingest,silver"], cwd=project)

    def silver(schema: str) -> pd.DataFrame:
        (version,) = (project / "data" / schema / "03_silver/prices.parquet").iterdir()
        table = pd.read_parquet(version / "prices.parquet")
        return table.drop(columns="ingest_run_id")

    vendor = silver("vendor_long_stock_data")
    assert len(vendor) == rows == 13_518
    # same values, to the bit: "47,5188" and "47.5188" parse to the same float
    pd.testing.assert_frame_equal(vendor, silver("dev_stock_data"), check_exact=True)
    (quarantine,) = (project / "data/vendor_long_stock_data/03_silver/quarantine").rglob(
        "*.parquet"
    )
    assert pd.read_parquet(quarantine).empty
