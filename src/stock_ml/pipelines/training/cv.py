"""Walk-forward splits of a (symbol, date) panel with purging and an embargo.

A row's label is realised ``horizon`` sessions after its date, so a plain time split still leaks:
the last training rows' labels are computed from prices inside the validation period. Two guards:

* **embargo**: ``embargo_sessions`` whole sessions between the last training date and the first
  validation date (at least the label horizon; checked);
* **purge**: any training row whose ``target_date`` reaches the validation start is dropped, which
  also covers a symbol whose own sessions have gaps (its horizon spans more calendar time).

The date folds come from scikit-learn's ``TimeSeriesSplit`` (with ``gap``) applied to the panel's
*unique dates*, then mapped back to rows: row-level splitters would cut a date in half across
symbols. Purging by ``target_date`` is the part no library splitter knows about for panel data,
so it is done here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import TimeSeriesSplit


@dataclass(frozen=True)
class Fold:
    """Row positions of one train/validation pair and what was cut between them."""

    number: int
    train: np.ndarray
    validation: np.ndarray
    train_end: pd.Timestamp
    validation_start: pd.Timestamp
    validation_end: pd.Timestamp
    purged_rows: int


def check_embargo(embargo_sessions: int, horizon: int) -> None:
    """An embargo shorter than the label horizon would let labels see validation prices."""
    if embargo_sessions < horizon:
        raise ValueError(
            f"embargo_sessions={embargo_sessions} is shorter than the label horizon ({horizon} "
            "sessions): training labels would be realised on validation dates"
        )


def purged_train_rows(
    dates: pd.Series, target_dates: pd.Series, train_dates: np.ndarray, validation_start
) -> tuple[np.ndarray, int]:
    """Positions of rows dated in ``train_dates`` whose label is realised before validation."""
    in_train = dates.isin(train_dates).to_numpy()
    realised_before = (target_dates < validation_start).to_numpy()
    keep = in_train & realised_before
    return np.flatnonzero(keep), int(in_train.sum() - keep.sum())


def walk_forward_folds(
    rows: pd.DataFrame, n_folds: int, embargo_sessions: int, horizon: int
) -> list[Fold]:
    """Expanding-window folds by date: each validates on later sessions than it trains on.

    ``rows`` needs ``date`` and ``target_date`` (the session that realises the label).
    """
    check_embargo(embargo_sessions, horizon)
    if n_folds < 2:
        raise ValueError(f"cv folds must be ≥ 2, got {n_folds}")
    unique_dates = np.sort(rows["date"].unique())
    splitter = TimeSeriesSplit(n_splits=n_folds, gap=embargo_sessions)
    try:
        date_folds = list(splitter.split(unique_dates))
    except ValueError as error:
        raise ValueError(
            f"{len(unique_dates)} training sessions cannot hold {n_folds} walk-forward folds with "
            f"a {embargo_sessions}-session embargo: lower the profile's cv_folds or ingest more "
            f"history ({error})"
        ) from error
    folds = []
    for number, (train_pos, validation_pos) in enumerate(date_folds):
        validation_dates = unique_dates[validation_pos]
        validation_start = validation_dates[0]
        train, purged = purged_train_rows(
            rows["date"], rows["target_date"], unique_dates[train_pos], validation_start
        )
        validation = np.flatnonzero(rows["date"].isin(validation_dates).to_numpy())
        if train.size == 0:
            raise ValueError(
                f"fold {number} has no training rows left after purging {purged}: "
                "lower cv_folds or the embargo"
            )
        folds.append(
            Fold(
                number=number,
                train=train,
                validation=validation,
                train_end=pd.Timestamp(rows["date"].iloc[train].max()),
                validation_start=pd.Timestamp(validation_start),
                validation_end=pd.Timestamp(validation_dates[-1]),
                purged_rows=purged,
            )
        )
    return folds
