"""The monitoring history, drawn twice with the same content: a PNG for reports and a page to zoom.

One daily run judges a single day; whether a model is decaying or a feature is drifting only shows
over many runs. Three panels share a time axis: (a) matured accuracy, daily and rolling, against
the retraining floor; (b) rolling rank IC against zero; (c) PSI of the most drifting features and
of the prediction score against the alert threshold.

What to draw is decided once, in plain data (``Panel``, ``Line``, ``Rule``); the two renderers
only translate that into matplotlib or plotly calls, so the PNG and the HTML cannot disagree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
from matplotlib.axes import Axes
from matplotlib.colors import TABLEAU_COLORS
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from plotly.subplots import make_subplots

TITLE = "stock_ml monitoring history"
NO_DATA = "no data yet"
DEFAULT_TOP_FEATURES = 8

HISTORY_COLUMNS = [
    "as_of_date",
    "model",
    "model_version",
    "role",
    "label",
    "accuracy",
    "rolling_accuracy",
    "rank_ic",
    "rolling_rank_ic",
]

# Hex colours, because both matplotlib and plotly understand them.
PALETTE = list(TABLEAU_COLORS.values())
GREY, RED, BLACK = "#7f7f7f", "#d62728", "#000000"


@dataclass(frozen=True)
class Line:
    """One series of one panel. ``kind`` picks the style: daily, rolling, feature or score."""

    label: str
    x: pd.Series
    y: pd.Series
    kind: str
    color: str
    group: str


@dataclass(frozen=True)
class Rule:
    """A horizontal reference line: a threshold the decision uses, or zero."""

    y: float
    label: str
    color: str
    dashed: bool = True


@dataclass(frozen=True)
class Panel:
    """Everything one panel shows; no lines means there is no history yet."""

    title: str
    ylabel: str
    lines: tuple[Line, ...]
    rules: tuple[Rule, ...]
    ylim: tuple[float, float] | None = None


def rolling_history(performance: pd.DataFrame, sessions: int) -> pd.DataFrame:
    """Daily and rolling accuracy and rank IC per model version and role.

    A single as-of date holds only a few matured predictions, so its accuracy is noisy; the
    retraining decision looks at the last ``sessions`` dates, pooled (sum of correct over sum of
    matured, so busy days weigh more). ``min_periods=1`` so a new version shows from its first
    day rather than after ``sessions`` days. The rank IC is averaged, as it cannot be pooled.
    """
    if performance.empty:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    # The table may come back from CSV with text dates: sort on real dates, not strings.
    frame = performance.assign(
        as_of_date=pd.to_datetime(performance["as_of_date"]),
        model=_model_names(performance),
    ).sort_values(
        ["model", "model_version", "role", "as_of_date"], kind="stable", ignore_index=True
    )
    groups = frame.groupby(["model", "model_version", "role"], sort=False)

    def rolling(column: str, how: str) -> pd.Series:
        return groups[column].transform(lambda s: s.rolling(sessions, min_periods=1).agg(how))

    frame["rolling_accuracy"] = rolling("correct", "sum") / rolling("matured_predictions", "sum")
    frame["rolling_rank_ic"] = rolling("rank_ic", "mean")
    frame["label"] = [
        _model_label(version, role, model)
        for model, version, role in zip(
            frame["model"], frame["model_version"], frame["role"], strict=True
        )
    ]
    return frame[HISTORY_COLUMNS]


def top_drifting(drift_history: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` features whose PSI peaked highest over the history, highest first.

    The peak, not the latest value, so a feature that drifted and came back still shows; ties
    are broken by name so the selection (and hence the colours) is stable from run to run.
    """
    if drift_history.empty:
        return []
    features = drift_history[drift_history["kind"] == "feature"]
    peaks = features.groupby("name", as_index=False)["psi"].max()
    peaks = peaks.sort_values(["psi", "name"], ascending=[False, True], na_position="last")
    return peaks["name"].head(n).tolist()


def history_figure(
    performance: pd.DataFrame, drift_history: pd.DataFrame, thresholds: dict
) -> Figure:
    """The monitoring history as a matplotlib figure, for ``matplotlib.MatplotlibDataset``.

    A bare Figure, not pyplot: no global backend switch, nothing left open in a long-lived worker.
    """
    panels = _panels(performance, drift_history, thresholds)
    figure = Figure(figsize=(12, 11), layout="constrained")
    figure.suptitle(TITLE)
    axes = figure.subplots(len(panels), 1, sharex=True)
    for ax, panel in zip(axes, panels, strict=True):
        _draw_matplotlib(ax, panel)
    _date_axis(axes[-1], drawn=any(panel.lines for panel in panels))
    return figure


def history_html(
    performance: pd.DataFrame, drift_history: pd.DataFrame, thresholds: dict
) -> go.Figure:
    """The monitoring history as an interactive plotly figure, for ``plotly.HTMLDataset``.

    One legend for the three panels: a model version's traces share a legend group, so hiding
    it in the legend hides its accuracy and its rank IC together.
    """
    panels = _panels(performance, drift_history, thresholds)
    figure = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        subplot_titles=[panel.title for panel in panels],
    )
    shown: set[str] = set()
    for row, panel in enumerate(panels, start=1):
        _draw_plotly(figure, row, panel, shown)
    figure.update_layout(title_text=TITLE, height=1000, hovermode="x unified")
    return figure


# --- What to draw ------------------------------------------------------------------------------


def _model_names(table: pd.DataFrame) -> pd.Series:
    """Each row's registered model as a short name: ``model`` when the table holds one (the pooled
    scope), else what tells them apart (per-symbol models: ``..._direction_aaa`` → ``aaa``)."""
    if "model_name" not in table or table["model_name"].nunique() < 2:
        return pd.Series("model", index=table.index)
    names = table["model_name"].astype(str)
    prefix = os.path.commonprefix(sorted(set(names)))
    return names.str.slice(len(prefix)).str.strip("_").replace("", "model")


def _model_label(version: object, role: str, model: str = "model") -> str:
    """The legend label of one model version in one role, e.g. ``model v3 (shadow)``; a
    per-symbol model is named by its symbol (``aaa v1 (serving)``)."""
    return f"{model} v{int(version)} ({role})"


def _panels(
    performance: pd.DataFrame, drift_history: pd.DataFrame, thresholds: dict
) -> tuple[Panel, Panel, Panel]:
    """The three panels both renderers draw, from the tables and the decision thresholds."""
    sessions = int(thresholds["rolling_sessions"])
    history = rolling_history(performance, sessions)
    top = int(thresholds.get("top_features", DEFAULT_TOP_FEATURES))
    return (
        _accuracy_panel(history, sessions, float(thresholds["accuracy_floor"])),
        _rank_ic_panel(history, sessions),
        _drift_panel(drift_history, top, float(thresholds["psi_threshold"])),
    )


def _line(
    label: str, part: pd.DataFrame, x: str, y: str, kind: str, color: str, group: str
) -> Line | None:
    """A line through the non-missing points of ``part``, or None when there is none."""
    part = part[part[y].notna()]
    if part.empty:
        return None
    return Line(label, pd.to_datetime(part[x]), part[y].astype(float), kind, color, group)


def _model_lines(history: pd.DataFrame, columns: dict[str, str]) -> tuple[Line, ...]:
    """Per version and role, one line per ``{column: kind}``, in one colour per version/role."""
    lines = []
    for index, ((model, version, _role, label), part) in enumerate(
        history.groupby(["model", "model_version", "role", "label"], sort=True)
    ):
        color = PALETTE[index % len(PALETTE)]
        # one legend group per model version, whatever the role: v3, or aaa v3 per symbol
        group = f"v{int(version)}" if model == "model" else f"{model} v{int(version)}"
        for column, kind in columns.items():
            name = f"{label} daily" if kind == "daily" else label
            lines.append(_line(name, part, "as_of_date", column, kind, color, group))
    return tuple(line for line in lines if line is not None)


def _accuracy_panel(history: pd.DataFrame, sessions: int, floor: float) -> Panel:
    """Daily accuracy (noisy, thin) under the rolling accuracy the decision reads (thick)."""
    return Panel(
        title=f"Accuracy of matured predictions: daily and rolling {sessions} sessions",
        ylabel="accuracy",
        lines=_model_lines(history, {"accuracy": "daily", "rolling_accuracy": "rolling"}),
        rules=(Rule(floor, f"floor {floor:g}", GREY),),
        ylim=(0.0, 1.0),
    )


def _rank_ic_panel(history: pd.DataFrame, sessions: int) -> Panel:
    """Rolling rank IC: does the score still order stocks by their forward return?"""
    return Panel(
        title=f"Rank IC of scores vs forward returns: rolling {sessions} sessions",
        ylabel="rank IC",
        lines=_model_lines(history, {"rolling_rank_ic": "rolling"}),
        rules=(Rule(0.0, "zero", GREY, dashed=False),),
    )


def _drift_panel(drift_history: pd.DataFrame, top: int, threshold: float) -> Panel:
    """PSI per run of the most drifting features, and of the prediction score drawn apart."""
    lines: list[Line | None] = []
    if not drift_history.empty:
        drift = drift_history.assign(
            run_date=pd.to_datetime(drift_history["run_date"]), model=_model_names(drift_history)
        ).sort_values("run_date", kind="stable")
        models = drift["model"].nunique()
        # Several models (one per symbol): a feature's line is its highest PSI of the run.
        features = drift[drift["kind"] == "feature"].groupby(["run_date", "name"], as_index=False)
        features = features["psi"].max()
        for index, name in enumerate(top_drifting(drift_history, top)):
            color = PALETTE[index % len(PALETTE)]
            part = features[features["name"] == name]
            label = name if models == 1 else f"{name} (max of {models} models)"
            lines.append(_line(label, part, "run_date", "psi", "feature", color, name))
        scores = drift[drift["kind"] == "prediction"]
        for (model, name), part in scores.groupby(["model", "name"], sort=True):
            label = f"prediction {name}" if models == 1 else f"{model} prediction {name}"
            color = BLACK if models == 1 else GREY
            lines.append(_line(label, part, "run_date", "psi", "score", color, label))
    return Panel(
        title=f"Drift: PSI vs training reference (top {top} features, prediction score)",
        ylabel="PSI",
        lines=tuple(line for line in lines if line is not None),
        rules=(Rule(threshold, f"alert PSI {threshold:g}", RED),),
    )


# --- matplotlib -------------------------------------------------------------------------------

_MATPLOTLIB_STYLE = {
    "daily": {"linewidth": 0.8, "marker": ".", "markersize": 4, "alpha": 0.6},
    "rolling": {"linewidth": 2.2},
    "feature": {"linewidth": 1.2, "marker": ".", "markersize": 4},
    "score": {"linewidth": 3.0},
}


def _draw_matplotlib(ax: Axes, panel: Panel) -> None:
    """One panel on one matplotlib axes."""
    for line in panel.lines:
        ax.plot(line.x, line.y, label=line.label, color=line.color, **_MATPLOTLIB_STYLE[line.kind])
    for rule in panel.rules:
        style = "--" if rule.dashed else "-"
        ax.axhline(rule.y, color=rule.color, linestyle=style, linewidth=1, label=rule.label)
    if not panel.lines:
        ax.text(
            0.5,
            0.5,
            NO_DATA,
            transform=ax.transAxes,
            ha="center",
            va="center",
            color=GREY,
            bbox={"facecolor": "white", "edgecolor": "none"},
        )
    ax.set_title(panel.title)
    ax.set_ylabel(panel.ylabel)
    if panel.ylim is not None:
        ax.set_ylim(*panel.ylim)
    ax.legend(loc="upper left", fontsize="small", ncols=2)


def _date_axis(ax: Axes, drawn: bool) -> None:
    """Concise date ticks on the shared time axis (one locator and formatter for all panels).

    With nothing drawn there is no time range and date ticks would read 1970: show none.
    """
    if not drawn:
        ax.xaxis.set_major_locator(NullLocator())
        return
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


# --- plotly -----------------------------------------------------------------------------------

_PLOTLY_STYLE = {
    "daily": {"mode": "lines+markers", "line": {"width": 1}, "marker": {"size": 4}, "opacity": 0.6},
    "rolling": {"mode": "lines", "line": {"width": 3}},
    "feature": {"mode": "lines+markers", "line": {"width": 1.5}, "marker": {"size": 4}},
    "score": {"mode": "lines", "line": {"width": 4}},
}


def _draw_plotly(figure: go.Figure, row: int, panel: Panel, shown: set[str]) -> None:
    """One panel in one subplot row; a label gets a legend entry only the first time it occurs."""
    for line in panel.lines:
        style = _PLOTLY_STYLE[line.kind]
        trace = go.Scatter(
            x=line.x,
            y=line.y,
            name=line.label,
            legendgroup=line.group,
            showlegend=line.label not in shown,
            **style,
        )
        trace.update(line_color=line.color, marker_color=line.color)
        figure.add_trace(trace, row=row, col=1)
        shown.add(line.label)
    for rule in panel.rules:
        figure.add_hline(
            y=rule.y,
            line={"color": rule.color, "width": 1, "dash": "dash" if rule.dashed else "solid"},
            annotation_text=rule.label,
            annotation_position="top left",
            row=row,
            col=1,
            exclude_empty_subplots=False,
        )
    if not panel.lines:
        figure.add_annotation(
            text=NO_DATA,
            xref="x domain",
            yref="y domain",
            x=0.5,
            y=0.5,
            showarrow=False,
            font={"color": GREY, "size": 16},
            row=row,
            col=1,
        )
    figure.update_yaxes(title_text=panel.ylabel, range=panel.ylim, row=row, col=1)
