"""Monitoring history plots: rolling history, top drifting features, the PNG and the HTML figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from matplotlib.figure import Figure

from stock_ml.pipelines.monitoring.plots import (
    HISTORY_COLUMNS,
    NO_DATA,
    TITLE,
    history_figure,
    history_html,
    rolling_history,
    top_drifting,
)

DATES = ["2024-03-04", "2024-03-05", "2024-03-06"]
THRESHOLDS = {"accuracy_floor": 0.45, "rolling_sessions": 2, "psi_threshold": 0.25}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _performance_rows(version, role, correct, matured, rank_ic, dates=DATES):
    """Rows of the matured-performance table for one model version in one role."""
    return pd.DataFrame(
        {
            "as_of_date": pd.to_datetime(dates),
            "model_name": "m",
            "model_version": version,
            "role": role,
            "matured_predictions": matured,
            "correct": correct,
            "mean_score": 0.5,
            "accuracy": np.divide(correct, matured),
            "rank_ic": rank_ic,
        }
    )


@pytest.fixture
def performance() -> pd.DataFrame:
    """v1 serving and v2 shadow over three dates, interleaved as the node writes them."""
    frame = pd.concat(
        [
            _performance_rows(1, "serving", [1, 2, 3], [4, 4, 4], [np.nan, 0.2, 0.4]),
            _performance_rows(2, "shadow", [4, 0, 2], [4, 2, 4], [0.5, -0.1, 0.3]),
        ]
    )
    return frame.sort_values(["as_of_date", "model_version"], ignore_index=True)


def _drift_rows(run_date, psi, prediction_psi):
    """The drift history of one run: ``psi`` maps feature to PSI, plus the score's PSI."""
    names = [*psi, "score"]
    return pd.DataFrame(
        {
            "run_date": pd.Timestamp(run_date),
            "model_version": 1,
            "kind": ["feature"] * len(psi) + ["prediction"],
            "name": names,
            "psi": [*psi.values(), prediction_psi],
            "ks_statistic": 0.1,
            "ks_pvalue": 0.5,
            "reference_rows": 1000,
            "current_rows": 100,
        }
    )


@pytest.fixture
def drift_history() -> pd.DataFrame:
    """Three runs; the score's PSI (0.9) tops every feature's, so it must not leak into the top."""
    return pd.concat(
        [
            _drift_rows(DATES[0], {"roc5": 0.05, "ma10": 0.30, "std5": 0.10, "kbar": 0.0}, 0.9),
            _drift_rows(DATES[1], {"roc5": 0.40, "ma10": 0.20, "std5": 0.30, "kbar": 0.0}, 0.1),
            _drift_rows(DATES[2], {"roc5": 0.10, "ma10": 0.10, "std5": 0.10, "kbar": 0.0}, 0.2),
        ],
        ignore_index=True,
    )


def _as_csv_round_trip(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The frame as it comes back from CSV: dates as ISO strings."""
    return frame.assign(**{column: frame[column].dt.strftime("%Y-%m-%d")})


# --- rolling_history ----------------------------------------------------------------------------


def test_rolling_history_pools_correct_over_matured(performance):
    history = rolling_history(performance, sessions=2)
    v1 = history[history["label"] == "model v1 (serving)"]
    # (1)/4, (1+2)/(4+4), (2+3)/(4+4)
    assert v1["rolling_accuracy"].tolist() == pytest.approx([0.25, 0.375, 0.625])
    assert v1["accuracy"].tolist() == pytest.approx([0.25, 0.5, 0.75])
    assert list(history.columns) == HISTORY_COLUMNS


def test_rolling_history_keeps_versions_and_roles_apart(performance):
    history = rolling_history(performance, sessions=2)
    v2 = history[(history["model_version"] == 2) & (history["role"] == "shadow")]
    # 4/4, (4+0)/(4+2), (0+2)/(2+4): pooled within v2 only, never with v1's rows.
    assert v2["rolling_accuracy"].tolist() == pytest.approx([1.0, 4 / 6, 2 / 6])
    assert set(history["label"]) == {"model v1 (serving)", "model v2 (shadow)"}
    assert (v2["label"] == "model v2 (shadow)").all()


def test_rolling_history_same_version_in_two_roles_is_two_series():
    frame = pd.concat(
        [
            _performance_rows(3, "serving", [1, 1], [2, 2], [0.1, 0.1], DATES[:2]),
            _performance_rows(3, "shadow", [2, 2], [2, 2], [0.3, 0.3], DATES[:2]),
        ]
    )
    history = rolling_history(frame, sessions=5)
    by_label = history.groupby("label")["rolling_accuracy"].apply(list).to_dict()
    assert by_label == {"model v3 (serving)": [0.5, 0.5], "model v3 (shadow)": [1.0, 1.0]}


def test_rolling_history_mean_rank_ic_skips_missing(performance):
    history = rolling_history(performance, sessions=2)
    v1 = history[history["model_version"] == 1]
    assert np.isnan(v1["rolling_rank_ic"].iloc[0])
    assert v1["rolling_rank_ic"].iloc[1:].tolist() == pytest.approx([0.2, 0.3])


def test_rolling_history_accepts_string_dates_and_sorts_them(performance):
    shuffled = _as_csv_round_trip(performance, "as_of_date").iloc[::-1]
    history = rolling_history(shuffled, sessions=2)
    v1 = history[history["model_version"] == 1]
    assert pd.api.types.is_datetime64_any_dtype(history["as_of_date"])
    assert v1["as_of_date"].tolist() == list(pd.to_datetime(DATES))
    assert v1["rolling_accuracy"].tolist() == pytest.approx([0.25, 0.375, 0.625])


def test_rolling_history_of_nothing_is_empty_with_columns(performance):
    history = rolling_history(performance.iloc[:0], sessions=20)
    assert history.empty
    assert list(history.columns) == HISTORY_COLUMNS


# --- top_drifting -------------------------------------------------------------------------------


def test_top_drifting_orders_by_peak_psi_excluding_predictions(drift_history):
    # Peaks: roc5 0.40, ma10 0.30, std5 0.30, kbar 0.0; ma10 before std5 by name; score excluded.
    assert top_drifting(drift_history, 3) == ["roc5", "ma10", "std5"]
    assert top_drifting(drift_history, 10) == ["roc5", "ma10", "std5", "kbar"]
    assert top_drifting(drift_history.iloc[:0], 3) == []


# --- history_figure (matplotlib) ----------------------------------------------------------------


def _ydata_of_lines(ax) -> list[list[float]]:
    return [[float(y) for y in line.get_ydata()] for line in ax.lines]


def test_history_figure_has_three_panels_with_threshold_lines(performance, drift_history):
    figure = history_figure(performance, drift_history, THRESHOLDS)
    assert isinstance(figure, Figure)
    accuracy, rank_ic, drift = figure.axes
    assert len(figure.axes) == 3
    assert [0.45, 0.45] in _ydata_of_lines(accuracy)
    assert [0.0, 0.0] in _ydata_of_lines(rank_ic)
    assert [0.25, 0.25] in _ydata_of_lines(drift)
    assert accuracy.get_ylim() == (0.0, 1.0)
    assert all(ax.get_title() and ax.get_ylabel() for ax in figure.axes)


def test_history_figure_legends_name_versions_features_and_score(performance, drift_history):
    figure = history_figure(performance, drift_history, {**THRESHOLDS, "top_features": 2})
    legends = [[text.get_text() for text in ax.get_legend().get_texts()] for ax in figure.axes]
    assert "model v1 (serving)" in legends[0]
    assert "model v2 (shadow) daily" in legends[0]
    assert "floor 0.45" in legends[0]
    assert "model v2 (shadow)" in legends[1]
    assert legends[2] == ["roc5", "ma10", "prediction score", "alert PSI 0.25"]


def test_history_figure_rolling_line_carries_the_rolling_values(performance, drift_history):
    figure = history_figure(performance, drift_history, THRESHOLDS)
    rolling = next(
        line for line in figure.axes[0].lines if line.get_label() == "model v1 (serving)"
    )
    assert list(rolling.get_ydata()) == pytest.approx([0.25, 0.375, 0.625])


def test_history_figure_of_empty_tables_says_no_data(performance, drift_history, tmp_path):
    figure = history_figure(performance.iloc[:0], drift_history.iloc[:0], THRESHOLDS)
    for ax in figure.axes:
        assert NO_DATA in [text.get_text() for text in ax.texts]
    figure.savefig(tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes().startswith(PNG_MAGIC)


def test_history_figure_with_only_drift_marks_only_the_model_panels(performance, drift_history):
    figure = history_figure(performance.iloc[:0], drift_history, THRESHOLDS)
    has_no_data = [NO_DATA in [text.get_text() for text in ax.texts] for ax in figure.axes]
    assert has_no_data == [True, True, False]


def test_history_figure_saves_png_from_csv_round_tripped_tables(
    performance, drift_history, tmp_path
):
    figure = history_figure(
        _as_csv_round_trip(performance, "as_of_date"),
        _as_csv_round_trip(drift_history, "run_date"),
        THRESHOLDS,
    )
    figure.savefig(tmp_path / "x.png")
    assert (tmp_path / "x.png").read_bytes().startswith(PNG_MAGIC)


# --- history_html (plotly) ----------------------------------------------------------------------


def test_history_html_traces_and_threshold_lines(performance, drift_history):
    figure = history_html(performance, drift_history, THRESHOLDS)
    assert isinstance(figure, go.Figure)
    names = [trace.name for trace in figure.data]
    assert "model v1 (serving)" in names
    assert "prediction score" in names
    assert sorted(shape.y0 for shape in figure.layout.shapes) == [0.0, 0.25, 0.45]
    assert figure.layout.title.text == TITLE


def test_history_html_panels_share_groups_and_legend_entries(performance, drift_history):
    figure = history_html(performance, drift_history, THRESHOLDS)
    v1 = [trace for trace in figure.data if trace.name == "model v1 (serving)"]
    # Rolling accuracy (row 1) and rolling rank IC (row 2): one group, one legend entry.
    assert [trace.yaxis for trace in v1] == ["y", "y2"]
    assert {trace.legendgroup for trace in v1} == {"v1"}
    assert [trace.showlegend for trace in v1] == [True, False]
    score = next(trace for trace in figure.data if trace.name == "prediction score")
    assert score.yaxis == "y3"
    assert list(score.y) == pytest.approx([0.9, 0.1, 0.2])


def test_history_html_writes_a_page_with_its_title(performance, drift_history, tmp_path):
    figure = history_html(
        _as_csv_round_trip(performance, "as_of_date"),
        _as_csv_round_trip(drift_history, "run_date"),
        THRESHOLDS,
    )
    figure.write_html(tmp_path / "x.html")
    assert TITLE in (tmp_path / "x.html").read_text(encoding="utf-8")


def test_history_html_of_empty_tables_says_no_data(performance, drift_history):
    figure = history_html(performance.iloc[:0], drift_history.iloc[:0], THRESHOLDS)
    notes = [note for note in figure.layout.annotations if note.text == NO_DATA]
    assert [note.yref for note in notes] == ["y domain", "y2 domain", "y3 domain"]
    assert len(figure.data) == 0
    assert sorted(shape.y0 for shape in figure.layout.shapes) == [0.0, 0.25, 0.45]


def test_per_symbol_models_are_drawn_apart_and_their_drift_as_the_highest(
    performance, drift_history
):
    """Per-symbol models share version numbers: AAA's v1 and BBB's v1 are two lines, named by
    symbol; a feature's drift line is its highest PSI over the models of a run."""
    names = {"aaa": "test_stock_ml_direction_aaa", "bbb": "test_stock_ml_direction_bbb"}
    both = pd.concat(
        [performance.assign(model_name=name) for name in names.values()], ignore_index=True
    )
    history = rolling_history(both, 2)
    assert sorted(history["label"].unique()) == [
        "aaa v1 (serving)",
        "aaa v2 (shadow)",
        "bbb v1 (serving)",
        "bbb v2 (shadow)",
    ]
    single = rolling_history(performance, 2)
    aaa = history[history["label"] == "aaa v1 (serving)"].reset_index(drop=True)
    expected = single[single["label"] == "model v1 (serving)"].reset_index(drop=True)
    assert aaa["rolling_accuracy"].tolist() == pytest.approx(expected["rolling_accuracy"].tolist())
    calmer = drift_history.assign(psi=drift_history["psi"] / 2)
    drift = pd.concat(
        [drift_history.assign(model_name=names["aaa"]), calmer.assign(model_name=names["bbb"])],
        ignore_index=True,
    )
    figure = history_html(both, drift, THRESHOLDS)
    traces = {trace.name: trace for trace in figure.data}
    assert {trace.legendgroup for trace in figure.data if trace.name == "aaa v1 (serving)"} == {
        "aaa v1"
    }
    assert list(traces["roc5 (max of 2 models)"].y) == pytest.approx([0.05, 0.40, 0.10])
    assert list(traces["aaa prediction score"].y) == pytest.approx([0.9, 0.1, 0.2])
    assert list(traces["bbb prediction score"].y) == pytest.approx([0.45, 0.05, 0.1])
