"""The seeded generator: reproducibility, calendars, regime shifts, and injected defects that silver
validation must report exactly as the injector's ground truth says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stock_ml.calendars import exchange_sessions
from stock_ml.pipelines.ingest.nodes import BRONZE_COLUMNS, synthetic_source
from stock_ml.pipelines.silver.nodes import data_health, validate_prices
from stock_ml.synthetic import (
    DEFECTS,
    TRUTH_COLUMNS,
    generate_ohlcv,
    inject_defects,
    render_text,
)

PARSING = {"date_format": "%Y-%m-%d", "decimal": "."}
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE"]
ALL_DEFECTS = {
    "exact_duplicates": 3,
    "conflicting_duplicates": 3,
    "gaps": 4,
    "bad_ohlc": 3,
    "nan_prices": 4,
    "negative_prices": 4,
    "negative_volume": 2,
    "stale_series": 2,
    "stale_sessions": 3,
}


def _before_regimes(symbols, start, sessions, seed, *, calendar="XWAR", daily_vol=0.02):
    """The generator as it was before regimes existed: its output must not change."""
    from stock_ml.calendars import sessions_from

    rng = np.random.default_rng(seed)
    dates = sessions_from(calendar, start, sessions)
    frames = []
    for symbol in symbols:
        drift = rng.normal(0.0003, 0.0005)
        vol = daily_vol * rng.uniform(0.6, 1.4)
        log_returns = rng.normal(drift, vol, size=sessions)
        close = 100.0 * rng.uniform(0.2, 5.0) * np.exp(np.cumsum(log_returns))
        open_ = close * np.exp(rng.normal(0.0, vol / 3, size=sessions))
        spread = np.abs(rng.normal(0.0, vol / 2, size=sessions))
        high = np.maximum(open_, close) * (1.0 + spread)
        low = np.minimum(open_, close) * (1.0 - spread)
        volume = np.round(rng.lognormal(mean=11.0, sigma=0.5, size=sessions))
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": dates,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": volume,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _log_returns(prices: pd.DataFrame, symbol: str) -> pd.Series:
    close = prices[prices["symbol"] == symbol].set_index("date")["close"]
    return np.log(close).diff()


def _bronze(text: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Bronze rows: lineage the way ingest stamps synthetic rows (source_file, source_row per
    symbol, source, ingest_run_id); other lineage columns, which silver does not read, constant."""
    bronze = text.copy()
    bronze["source_file"] = f"synthetic(seed={seed})"
    bronze["source_row"] = bronze.groupby("symbol").cumcount() + 1
    bronze["source"] = "synthetic"
    bronze["ingest_run_id"] = "run-1"
    for column in BRONZE_COLUMNS:
        if column not in bronze:
            bronze[column] = "test"
    return bronze[BRONZE_COLUMNS]


# --- generate_ohlcv -----------------------------------------------------------------------------


def test_same_seed_same_frame_other_seed_different():
    a = generate_ohlcv(SYMBOLS, "2024-01-01", 30, seed=1)
    b = generate_ohlcv(SYMBOLS, "2024-01-01", 30, seed=1)
    c = generate_ohlcv(SYMBOLS, "2024-01-01", 30, seed=2)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.columns) == ["symbol", "date", "open", "high", "low", "close", "volume"]
    assert len(a) == 5 * 30
    for column in ["open", "high", "low", "close", "volume"]:
        assert not np.isclose(a[column], c[column]).any(), column


@pytest.mark.parametrize("calendar", ["XWAR", "XNYS"])
@pytest.mark.parametrize("regimes", [None, [], [{"start": "2030-01-01", "vol_multiplier": 9.0}]])
def test_output_is_that_of_the_generator_before_regimes(calendar, regimes):
    """No regime (or one after the last session): bit-identical to the pre-regime generator."""
    expected = _before_regimes(SYMBOLS, "2023-06-01", 80, 7, calendar=calendar, daily_vol=0.03)
    actual = generate_ohlcv(
        SYMBOLS, "2023-06-01", 80, 7, calendar=calendar, daily_vol=0.03, regimes=regimes
    )
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)


@pytest.mark.parametrize(
    ("calendar", "closed", "open_"),
    [
        # Warsaw: Labour Day, Constitution Day, Corpus Christi; open on US holidays
        ("XWAR", ["2024-05-01", "2024-05-03", "2024-05-30"], ["2024-01-15", "2024-07-04"]),
        # New York: Martin Luther King Day, Independence Day; open on Polish holidays
        ("XNYS", ["2024-01-15", "2024-07-04"], ["2024-05-01", "2024-05-03", "2024-05-30"]),
    ],
)
def test_sessions_are_the_exchange_calendars(calendar, closed, open_):
    prices = generate_ohlcv(["AAA", "BBB"], "2024-01-01", 150, seed=3, calendar=calendar)
    dates = pd.DatetimeIndex(prices.loc[prices["symbol"] == "BBB", "date"])
    assert (dates == exchange_sessions(calendar, "2024-01-01", dates[-1])).all()
    assert len(dates) == 150
    assert (prices.groupby("symbol")["date"].apply(list).map(len) == 150).all()
    assert dates[0] == pd.Timestamp("2024-01-02"), "1 January is a holiday on both"
    assert not dates.isin(pd.to_datetime(closed)).any()
    assert pd.to_datetime(open_).isin(dates).all()
    assert (dates.dayofweek < 5).all()


def test_render_text_is_what_ingest_writes():
    config = {"seed": 4, "symbols": ["AAA", "BBB"], "start": "2024-01-01", "sessions": 20}
    text = render_text(generate_ohlcv(["AAA", "BBB"], "2024-01-01", 20, 4))
    ingested = synthetic_source(config).drop(columns=["source_file", "source_row"])
    pd.testing.assert_frame_equal(text, ingested, check_exact=True)
    assert text["date"].iloc[0] == "2024-01-02"
    assert text["close"].map(type).eq(str).all()


# --- regimes ------------------------------------------------------------------------------------


def test_regime_leaves_prices_before_its_start_and_other_symbols_unchanged():
    base = generate_ohlcv(SYMBOLS, "2024-01-01", 120, seed=5)
    shifted = generate_ohlcv(
        SYMBOLS,
        "2024-01-01",
        120,
        seed=5,
        regimes=[
            {"start": "2024-03-15", "drift": -0.01, "vol_multiplier": 2.5, "symbols": ["BBB"]},
            {"start": "2024-04-02", "vol_multiplier": 0.5, "symbols": ["DDD", "AAA"]},
        ],
    )
    before = {"BBB": "2024-03-15", "DDD": "2024-04-02", "AAA": "2024-04-02"}
    for symbol in SYMBOLS:
        own = base["symbol"] == symbol
        # No regime: all sessions; with one: sessions before its start (a Friday and a Tuesday).
        unchanged = own & (base["date"] < before.get(symbol, "2100-01-01"))
        pd.testing.assert_frame_equal(shifted[unchanged], base[unchanged], check_exact=True)
        if symbol in before:
            after = own & ~unchanged
            assert after.sum() > 30
            assert not np.isclose(shifted.loc[after, "close"], base.loc[after, "close"]).any()


def test_vol_multiplier_scales_realized_volatility():
    start = "2024-01-01"
    regime_start = pd.Timestamp("2025-01-02")
    prices = generate_ohlcv(
        SYMBOLS, start, 500, seed=8, regimes=[{"start": "2025-01-01", "vol_multiplier": 3.0}]
    )
    for symbol in SYMBOLS:
        returns = _log_returns(prices, symbol)
        before = returns[returns.index < regime_start].dropna()
        after = returns[returns.index >= regime_start]
        assert len(before) > 200 and len(after) > 200
        assert after.std() / before.std() == pytest.approx(3.0, rel=0.15), symbol
        # the intraday range scales with the same volatility
        own = prices[prices["symbol"] == symbol].set_index("date")
        spread = np.log(own["high"] / own["low"])
        ratio = (
            spread[spread.index >= regime_start].mean() / spread[spread.index < regime_start].mean()
        )
        assert ratio == pytest.approx(3.0, rel=0.15), symbol
    # still a valid market: consistent OHLC, positive prices
    assert (prices["high"] >= prices[["open", "close"]].max(axis=1)).all()
    assert (prices["low"] <= prices[["open", "close"]].min(axis=1)).all()
    assert (prices[["open", "high", "low", "close"]] > 0).all().all()


@pytest.mark.parametrize("drift", [-0.01, 0.01])
def test_regime_drift_sign_shows(drift):
    regime_start = pd.Timestamp("2024-06-03")
    prices = generate_ohlcv(
        SYMBOLS, "2024-01-01", 300, seed=9, regimes=[{"start": "2024-06-03", "drift": drift}]
    )
    for symbol in SYMBOLS:
        after = _log_returns(prices, symbol)
        after = after[after.index >= regime_start]
        assert np.sign(after.mean()) == np.sign(drift), symbol
        # the mean daily log-return is the drift, within 4 standard errors
        assert abs(after.mean() - drift) < 4 * after.std() / np.sqrt(len(after)), symbol
        close = prices[prices["symbol"] == symbol].set_index("date")["close"]
        assert np.sign(close.iloc[-1] - close[close.index < regime_start].iloc[-1]) == np.sign(
            drift
        )


def test_a_later_regime_replaces_an_earlier_one():
    """Multipliers do not compound: after a 1× regime, returns are the no-regime returns again."""
    base = generate_ohlcv(["AAA"], "2024-01-01", 100, seed=2)
    shifted = generate_ohlcv(
        ["AAA"],
        "2024-01-01",
        100,
        seed=2,
        # listed out of order on purpose: regimes apply in order of start
        regimes=[
            {"start": "2024-03-01", "vol_multiplier": 1.0},
            {"start": "2024-02-01", "vol_multiplier": 4.0, "drift": 0.05},
        ],
    )
    returns, base_returns = _log_returns(shifted, "AAA"), _log_returns(base, "AAA")
    middle = (returns.index >= "2024-02-01") & (returns.index < "2024-03-01")
    late = returns.index >= "2024-03-01"
    assert not np.allclose(returns[middle], base_returns[middle])
    np.testing.assert_allclose(returns[late], base_returns[late], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("regime", "message"),
    [
        ({"drift": 0.01}, "needs 'start'"),
        ({"start": "2024-02-01", "volatility": 2}, "only keys"),
        ({"start": "2024-02-01", "vol_multiplier": 0}, "vol_multiplier must be > 0"),
        ({"start": "2024-02-01", "symbols": ["ZZZ"]}, r"symbols \['ZZZ'\] are not generated"),
    ],
)
def test_bad_regimes_are_rejected(regime, message):
    with pytest.raises(ValueError, match=message):
        generate_ohlcv(["AAA"], "2024-01-01", 30, seed=1, regimes=[regime])


# --- inject_defects -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_text() -> pd.DataFrame:
    return render_text(generate_ohlcv(SYMBOLS, "2024-01-01", 40, seed=21))


def _silver_and_health(text: pd.DataFrame, run_date: str, max_sessions_behind: int = 1):
    universe = {"groups": {"warsaw": {"calendar": "XWAR", "symbols": SYMBOLS}}}
    silver, quarantine, accounting = validate_prices(_bronze(text, 21), universe, PARSING, run_date)
    health = data_health(silver, accounting, universe, run_date, max_sessions_behind)
    return silver, quarantine, accounting, health.set_index("symbol")


def _assert_validator_agrees(clean: pd.DataFrame, defects: dict, seed: int):
    text, truth = inject_defects(clean, defects, seed)
    run_date = clean["date"].max()  # the last generated session: fresh unless made stale
    silver, quarantine, accounting, health = _silver_and_health(text, run_date)

    # Quarantine: exactly the injected rows, each with its expected primary reason.
    expected = truth.dropna(subset=["expected_reason"])
    assert not quarantine.duplicated(["symbol", "date"]).any()
    got = set(quarantine[["symbol", "date", "reason"]].itertuples(index=False, name=None))
    assert got == set(expected[["symbol", "date", "expected_reason"]].itertuples(index=False))

    # Exact duplicates: counted, per symbol, not quarantined.
    per_symbol = pd.Series(0, index=SYMBOLS)
    duplicates = truth[truth["defect"] == "exact_duplicates"].groupby("symbol").size()
    pd.testing.assert_series_equal(
        accounting.set_index("symbol")["exact_duplicates"],
        per_symbol.add(duplicates, fill_value=0).astype("int64").rename_axis("symbol"),
        check_names=False,
    )

    # Missing sessions: each gap, and each quarantined row no later row replaces, leaves a hole.
    holes = truth[
        truth["defect"].eq("gaps")
        | (truth["expected_reason"].notna() & truth["expected_reason"].ne("duplicate_key"))
    ]
    missing = per_symbol.add(holes.groupby("symbol").size(), fill_value=0).astype("int64")
    assert health.loc[SYMBOLS, "missing_sessions"].tolist() == missing.tolist()

    # Freshness: stale exactly where series were cut.
    stale = set(truth.loc[truth["defect"] == "stale_series", "symbol"])
    assert set(health.index[health["status"] == "stale"]) == stale
    assert set(health.index[health["status"] == "fresh"]) == set(SYMBOLS) - stale
    cut = defects.get("stale_sessions", 5)
    assert (health.loc[sorted(stale), "sessions_behind"] == cut).all()

    # Everything else reaches silver; a conflicting duplicate's later row wins.
    stale_cut = truth["defect"].eq("stale_series").sum()
    assert len(silver) == len(clean) - len(holes) - stale_cut
    for row in truth[truth["defect"] == "conflicting_duplicates"].itertuples():
        corrected = text[(text["symbol"] == row.symbol) & (text["date"] == row.date)].iloc[-1]
        kept = silver[(silver["symbol"] == row.symbol) & (silver["date"] == row.date)]
        assert kept["close"].tolist() == [pytest.approx(float(corrected["close"]), rel=1e-12)]
    return text, truth


def test_injected_defects_are_what_silver_validation_reports(clean_text):
    """The key contract: injector's ground truth = validator's quarantine, counts and health."""
    text, truth = _assert_validator_agrees(clean_text, ALL_DEFECTS, seed=13)
    assert truth.groupby("defect").size().to_dict() == {
        "bad_ohlc": 3,
        "conflicting_duplicates": 3,
        "exact_duplicates": 3,
        "gaps": 4,
        "nan_prices": 4,
        "negative_prices": 4,
        "negative_volume": 2,
        "stale_series": 2 * 3,
    }
    assert len(text) == len(clean_text) + 3 + 3 - 4 - 2 * 3


@pytest.mark.parametrize("kind", [k for k in DEFECTS if k != "stale_series"])
def test_each_defect_alone_is_what_silver_validation_reports(clean_text, kind):
    _, truth = _assert_validator_agrees(clean_text, {kind: 2}, seed=3)
    assert truth["defect"].tolist() == [kind, kind]


def test_gaps_alone_are_the_missing_sessions(clean_text):
    text, truth = inject_defects(clean_text, {"gaps": 6}, seed=4)
    _, quarantine, _, health = _silver_and_health(text, clean_text["date"].max())
    assert quarantine.empty
    gaps = truth.groupby("symbol").size().reindex(SYMBOLS, fill_value=0)
    assert health.loc[SYMBOLS, "missing_sessions"].tolist() == gaps.tolist()
    assert gaps.sum() == 6


def test_zero_defects_leave_the_frame_unchanged(clean_text):
    for defects in [{}, dict.fromkeys(DEFECTS, 0) | {"stale_sessions": 3}]:
        text, truth = inject_defects(clean_text, defects, seed=1)
        pd.testing.assert_frame_equal(text, clean_text, check_exact=True)
        assert truth.empty and list(truth.columns) == TRUTH_COLUMNS


def test_injection_is_reproducible_and_hits_each_row_once(clean_text):
    first = inject_defects(clean_text, ALL_DEFECTS, seed=13)
    again = inject_defects(clean_text, ALL_DEFECTS, seed=13)
    other = inject_defects(clean_text, ALL_DEFECTS, seed=14)
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not first[1].equals(other[1])
    assert not first[1].duplicated(["symbol", "date"]).any()
    assert list(first[1].columns) == TRUTH_COLUMNS


def test_injection_carries_other_columns_and_leaves_its_input_alone(clean_text):
    bronze = _bronze(clean_text, 21)
    before = bronze.copy()
    text, truth = inject_defects(bronze, {"exact_duplicates": 2, "conflicting_duplicates": 1}, 5)
    pd.testing.assert_frame_equal(bronze, before, check_exact=True)
    assert list(text.columns) == BRONZE_COLUMNS
    assert text.dtypes.equals(bronze.dtypes)
    # an added row copies its original's lineage and sits right after it
    for row in truth.itertuples():
        same = text[(text["symbol"] == row.symbol) & (text["date"] == row.date)]
        assert len(same) == 2 and same.index[1] == same.index[0] + 1
        assert same["source_row"].nunique() == 1
        assert (same["close"].nunique() == 2) == (row.defect == "conflicting_duplicates")


@pytest.mark.parametrize(
    ("defects", "message"),
    [
        ({"typos": 1}, "unknown defects"),
        ({"gaps": -1}, "negative counts"),
        ({"stale_series": 6}, "only 5 symbols"),
        ({"stale_series": 1, "stale_sessions": 39}, "too few sessions"),
        ({"gaps": 5 * 38 + 1}, "eligible rows"),
    ],
)
def test_impossible_injections_are_rejected(clean_text, defects, message):
    with pytest.raises(ValueError, match=message):
        inject_defects(clean_text, defects, seed=1)
