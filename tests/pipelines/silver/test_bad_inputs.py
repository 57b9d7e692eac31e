"""The bad input corpus (tests/data/bad_inputs): every malformed file ends in quarantine with the
right reason, or in an error naming the file; and every row is accounted for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from kedro_datasets.partitions import PartitionedDataset

from stock_ml.pipelines.silver.nodes import data_health, validate_prices
from tests.pipelines.ingest.bronze import bronze_rows

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO / "tests" / "data" / "bad_inputs"
UNIVERSE = {"groups": {"warsaw": {"calendar": "XWAR", "symbols": ["ACP"]}}}
RUN_DATE = "2024-06-28"
PARSING = {"date_format": "%Y-%m-%d", "decimal": "."}


def _source_conf() -> tuple[dict, dict]:
    """The real catalog entry and ingest parameters of the bundled sample."""
    catalog = yaml.safe_load((REPO / "conf/base/catalog.yml").read_text())["raw_price_files"]
    params = yaml.safe_load((REPO / "conf/base/parameters_ingest.yml").read_text())
    return catalog, params["ingest"]


def _ingest(case: str):
    catalog, ingest = _source_conf()
    files = PartitionedDataset(
        path=str(CORPUS / case),
        dataset=catalog["dataset"],
        filename_suffix=catalog["filename_suffix"],
    ).load()
    return bronze_rows(files, ingest["source"], ingest["csv_formats"], UNIVERSE, f"corpus-{case}")


def _silver(case: str):
    bronze = _ingest(case)
    silver, quarantine, accounting = validate_prices(bronze, UNIVERSE, PARSING, RUN_DATE)
    # the identity, for every case: bronze rows = kept + quarantined + exact duplicates
    assert len(bronze) == len(silver) + len(quarantine) + accounting["exact_duplicates"].sum()
    assert (
        accounting["rows_read"]
        == accounting["kept"] + accounting["quarantined"] + accounting["exact_duplicates"]
    ).all()
    return bronze, silver, quarantine, accounting


# case -> {source_row: primary reason}, exact duplicates, rows kept
QUARANTINED = {
    "non_numeric_price": ({4: "unparseable_close"}, 0, 4),
    "high_below_low": ({3: "inconsistent_ohlc"}, 0, 4),
    "high_below_close": ({5: "inconsistent_ohlc"}, 0, 4),
    "future_date": ({7: "future_date"}, 0, 5),
    "unknown_symbol": ({row: "unknown_symbol" for row in range(2, 7)}, 0, 0),
    "mixed_date_formats": ({6: "unparseable_date"}, 0, 4),
    "negative_volume": ({2: "negative_volume"}, 0, 4),
    "missing_value": ({3: "missing_close"}, 0, 4),
    "negative_price": ({4: "non_positive_price"}, 0, 4),
    "zero_price": ({5: "non_positive_price"}, 0, 4),
    "exchange_holiday": ({7: "not_a_session"}, 0, 5),
    "weekend_date": ({7: "not_a_session"}, 0, 5),
    "conflicting_duplicate_key": ({6: "duplicate_key"}, 0, 5),
    "decimal_comma": ({3: "unparseable_open"}, 0, 4),
    "exact_duplicate_rows": ({}, 1, 5),
    "out_of_order_dates": ({}, 0, 5),
}

FAILS = {
    "missing_column": r"acp_d: missing columns \['Wolumen'\]",
    "wrong_delimiter": r"acp_d: missing columns .* \(wrong delimiter\?\)",
    "empty_file": r"acp_d: cannot be read as CSV",
}


def test_corpus_is_complete() -> None:
    cases = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert cases == set(QUARANTINED) | set(FAILS) | {"header_only", "several_defects_in_one_row"}
    assert len(cases) >= 15


@pytest.mark.parametrize("case", sorted(QUARANTINED))
def test_bad_rows_are_quarantined_with_their_reason(case: str) -> None:
    expected, duplicates, kept = QUARANTINED[case]
    _, silver, quarantine, accounting = _silver(case)
    assert dict(zip(quarantine["source_row"], quarantine["reason"], strict=True)) == expected
    assert int(accounting["exact_duplicates"].sum()) == duplicates
    assert len(silver) == kept
    assert not silver.duplicated(["symbol", "date"]).any()
    assert silver["date"].is_monotonic_increasing
    # a quarantined row keeps what the source said and where it came from
    if expected:
        assert set(quarantine["source_file"]) == {next(iter((CORPUS / case).glob("*.csv"))).stem}
        assert quarantine["ingest_run_id"].eq(f"corpus-{case}").all()


@pytest.mark.parametrize("case", sorted(FAILS))
def test_unreadable_files_fail_naming_the_file(case: str) -> None:
    with pytest.raises(ValueError, match=FAILS[case]):
        _ingest(case)


def test_a_later_row_for_the_same_session_wins() -> None:
    _, silver, quarantine, _ = _silver("conflicting_duplicate_key")
    assert silver.loc[silver["date"] == "2019-09-05", "close"].tolist() == [49.0]
    assert quarantine["close"].tolist() == ["48.8335"]


def test_a_row_with_several_defects_lists_them_all() -> None:
    _, _, quarantine, _ = _silver("several_defects_in_one_row")
    assert quarantine["source_row"].tolist() == [4]
    assert set(quarantine["reasons"].iloc[0].split(";")) == {"negative_volume", "inconsistent_ohlc"}
    assert quarantine["reason"].iloc[0] == "negative_volume", "values before how they relate"


def test_header_only_file_reads_nothing_and_health_says_missing() -> None:
    bronze, silver, quarantine, accounting = _silver("header_only")
    assert len(bronze) == len(silver) == len(quarantine) == 0
    health = data_health(silver, accounting, UNIVERSE, RUN_DATE, max_sessions_behind=1)
    assert health.set_index("symbol").loc["ACP", "status"] == "missing"
    assert health.set_index("symbol").loc["ACP", "rows_read"] == 0


def test_out_of_order_file_is_sorted_not_rejected() -> None:
    bronze, silver, _, _ = _silver("out_of_order_dates")
    assert not bronze["date"].is_monotonic_increasing
    assert silver["date"].dt.strftime("%Y-%m-%d").tolist() == sorted(bronze["date"])


def test_error_messages_are_specific() -> None:
    """The message says which file and what is wrong, not just that something is."""
    with pytest.raises(ValueError) as raised:
        _ingest("missing_column")
    message = str(raised.value)
    assert re.search(r"Data', 'Otwarcie', 'Najwyzszy', 'Najnizszy', 'Zamkniecie'\]", message)
