"""Walk-forward folds: ordered, disjoint, embargoed and purged (no label sees validation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stock_ml.pipelines.training.cv import check_embargo, walk_forward_folds

HORIZON = 3


def _panel(sessions: int = 100, symbols: int = 3, gap_symbol_every: int = 0) -> pd.DataFrame:
    """(symbol, date) rows with target_date = the symbol's own session HORIZON ahead."""
    dates = pd.bdate_range("2023-01-02", periods=sessions)
    frames = []
    for k in range(symbols):
        own = dates
        if gap_symbol_every and k == 0:
            own = dates[np.arange(sessions) % gap_symbol_every != 0]  # a symbol with gaps
        frame = pd.DataFrame({"symbol": f"S{k}", "date": own})
        frame["target_date"] = frame["date"].shift(-HORIZON)
        frames.append(frame.dropna())
    return pd.concat(frames, ignore_index=True).sort_values(["date", "symbol"], ignore_index=True)


def test_folds_are_ordered_expanding_and_disjoint():
    rows = _panel()
    folds = walk_forward_folds(rows, n_folds=4, embargo_sessions=5, horizon=HORIZON)
    assert [f.number for f in folds] == [0, 1, 2, 3]
    seen_validation: set[int] = set()
    for earlier, later in zip(folds, folds[1:], strict=False):
        assert earlier.validation_end < later.validation_start
        assert len(later.train) > len(earlier.train)  # expanding window
    for fold in folds:
        assert not set(fold.train) & set(fold.validation)
        assert not set(fold.validation) & seen_validation
        seen_validation |= set(fold.validation)
        # whole dates: a validation date is never split between train and validation
        assert not set(rows["date"].iloc[fold.train]) & set(rows["date"].iloc[fold.validation])


def test_embargo_leaves_whole_sessions_between_train_and_validation():
    rows = _panel()
    embargo = 6
    sessions = pd.DatetimeIndex(np.sort(rows["date"].unique()))
    for fold in walk_forward_folds(rows, n_folds=3, embargo_sessions=embargo, horizon=HORIZON):
        train_end = sessions.get_loc(rows["date"].iloc[fold.train].max())
        validation_start = sessions.get_loc(fold.validation_start)
        assert validation_start - train_end - 1 >= embargo
        assert (rows["date"].iloc[fold.train] < fold.validation_start).all()


def test_no_training_label_is_realised_on_or_after_the_validation_start():
    # With gaps in one symbol's sessions, its horizon spans more calendar days than the embargo:
    # only purging by target_date keeps those rows out.
    rows = _panel(sessions=120, gap_symbol_every=2)
    folds = walk_forward_folds(rows, n_folds=3, embargo_sessions=HORIZON, horizon=HORIZON)
    assert sum(f.purged_rows for f in folds) > 0, "the gappy symbol must have needed a purge"
    for fold in folds:
        train = rows.iloc[fold.train]
        assert (train["target_date"] < fold.validation_start).all()
        in_window = rows["date"].isin(train["date"].unique())
        assert fold.purged_rows == int(in_window.sum() - len(fold.train))


def test_embargo_shorter_than_the_horizon_is_refused():
    with pytest.raises(ValueError, match="shorter than the label horizon"):
        check_embargo(embargo_sessions=2, horizon=3)
    with pytest.raises(ValueError, match="shorter than the label horizon"):
        walk_forward_folds(_panel(), n_folds=3, embargo_sessions=1, horizon=HORIZON)


def test_too_few_sessions_for_the_folds_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot hold 50 walk-forward folds"):
        walk_forward_folds(_panel(sessions=40), n_folds=50, embargo_sessions=5, horizon=HORIZON)
