"""Figures shared by the chapters. Each function draws on a matplotlib ``Axes`` and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from interest_lib.data.describe import local_hour, session_ids
from interest_lib.data.schema import BEHAVIOR_TYPES


def _axes(ax: Axes | None, figsize: tuple[float, float] = (6, 3.5)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_hourly_activity(events: pd.DataFrame, ax: Axes | None = None, label: str | None = None) -> Axes:
    """Share of events per hour of the day (UTC+8)."""
    ax = _axes(ax)
    hours = np.bincount(local_hour(events["timestamp"].to_numpy()), minlength=24)
    ax.plot(np.arange(24), hours / hours.sum(), marker="o", label=label)
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlabel("hour of day (UTC+8)")
    ax.set_ylabel("share of events")
    ax.set_title("Activity by hour of day")
    return ax


def plot_funnel(events: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Number of events per behaviour type, in funnel order, on a log scale."""
    ax = _axes(ax)
    counts = events["behavior_type"].value_counts().reindex(list(BEHAVIOR_TYPES))
    bars = ax.bar(counts.index.astype(str), counts.to_numpy(), color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"])
    ax.set_yscale("log")
    for bar, share in zip(bars, counts / counts.sum()):
        ax.annotate(f"{share:.1%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("events (log scale)")
    ax.set_title("The purchase funnel")
    return ax


def plot_category_long_tail(events: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Events per category against the category's popularity rank, log–log."""
    ax = _axes(ax)
    counts = np.sort(events["category_id"].value_counts().to_numpy())[::-1]
    ax.loglog(np.arange(1, len(counts) + 1), counts, marker=".", linestyle="-")
    ax.set_xlabel("category rank")
    ax.set_ylabel("events")
    ax.set_title("The category long tail")
    return ax


def plot_user_trajectory(
    events: pd.DataFrame,
    segment: np.ndarray,
    segment_names: list[str],
    user_id: int,
    category_order: np.ndarray | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One user's events over time: y = category, colour = latent segment, grey bands = sessions.

    Parameters
    ----------
    events
        Event table sorted by user then time.
    segment
        (n_events,) latent segment of every row of ``events`` (the simulator's truth).
    segment_names
        Names of the segments, for the legend.
    user_id
        Whose trajectory to draw.
    category_order
        Category ids in the order to stack them on the y axis (default: sorted ids).
    """
    ax = _axes(ax, (9, 4))
    mask = (events["user_id"] == user_id).to_numpy()
    ev = events.loc[mask]
    seg = np.asarray(segment)[mask]
    days = (ev["timestamp"].to_numpy() - ev["timestamp"].min()) / 86400
    cats = ev["category_id"].to_numpy()
    order = np.unique(cats) if category_order is None else np.asarray(category_order)
    order = order[np.isin(order, cats)]
    row_of = pd.Series(np.arange(len(order)), index=order)
    y = row_of.loc[cats].to_numpy()
    cmap = plt.get_cmap("tab10")
    for s in np.unique(seg):
        pick = seg == s
        ax.scatter(days[pick], y[pick], s=14, color=cmap(int(s) % 10), label=segment_names[int(s)])
    sid = session_ids(ev)
    for s in np.unique(sid)[::2]:
        span = days[sid == s]
        ax.axvspan(span.min() - 0.005, span.max() + 0.005, color="0.92", zorder=0)
    ax.set_xlabel("days since the user's first event")
    ax.set_ylabel("category")
    ax.set_yticks([])
    ax.set_title(f"User {user_id}: categories over time, coloured by the latent segment")
    ax.legend(title="segment", bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    return ax


def plot_matrix(
    matrix: np.ndarray,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    title: str = "",
    ax: Axes | None = None,
    cmap: str = "viridis",
    annotate: bool = False,
) -> Axes:
    """A heatmap of a small matrix (transition matrices, emission rows, confusion tables)."""
    ax = _axes(ax, (5, 4))
    image = ax.imshow(matrix, aspect="auto", cmap=cmap)
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if row_labels is not None:
        ax.set_yticks(range(len(row_labels)), row_labels)
    if col_labels is not None:
        ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right")
    if annotate:
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value < matrix.max() / 2 else "black")
    ax.set_title(title)
    return ax


def draw_generative_story(ax: Axes | None = None) -> Axes:
    """A diagram of the simulator: a chain of latent session segments emitting events."""
    ax = _axes(ax, (10, 3.8))
    ax.set_xlim(0, 11.5)
    ax.set_ylim(0, 4.2)
    ax.axis("off")

    def box(x, y, text, color, w=1.6, h=0.7):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05",
                                    facecolor=color, edgecolor="0.3"))
        ax.text(x, y, text, ha="center", va="center", fontsize=9)

    def arrow(x0, y0, x1, y1, text=None):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12, color="0.3"))
        if text:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.25, text, ha="center", va="bottom", fontsize=8,
                    color="0.25")

    box(1.0, 3.6, "user preference\n$\\pi_u$", "#fdf0e0", w=1.8, h=0.8)
    xs = [2.9, 6.0, 9.1]
    for k, x in enumerate(xs):
        box(x, 2.3, f"segment of\nsession {k + 1}", "#e8eef7")
        for j, dx in enumerate((-0.6, 0.0, 0.6)):
            box(x + dx, 0.6, f"$c_{{{j + 1}}}$", "#e6f4ea", w=0.5, h=0.5)
            arrow(x, 1.92, x + dx, 0.88)
    arrow(1.9, 3.4, xs[0] - 0.5, 2.7)
    arrow(xs[0] + 0.85, 2.3, xs[1] - 0.85, 2.3, "$A_u$ (sticky,\nmigrations)")
    arrow(xs[1] + 0.85, 2.3, xs[2] - 0.85, 2.3, "$A_u$ after the\npromotion shift")
    ax.text(10.1, 0.6, "categories: repeat\nthe previous one, or\nfresh from the\nsegment × taste ×\nplatform exposure",
            fontsize=8, va="center")
    ax.text(0.1, 0.6, "events in a\nsession\n(< 30 min apart)", fontsize=8, va="center")
    ax.set_title("The simulator's generative story (a hidden Markov model over sessions)")
    return ax


def draw_lstm_cell(ax: Axes | None = None) -> Axes:
    """A diagram of one LSTM step: the cell state runs along the top, four gates read
    :math:`[h_{t-1}, x_t]`, the forget gate scales the old cell state, the input gate adds the
    candidate, the output gate reads :math:`\\tanh(c_t)` out as :math:`h_t`."""
    ax = _axes(ax, (10, 4.2))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 5)
    ax.axis("off")

    def node(x, y, text, color, w=1.0, h=0.6, round_=True):
        style = "round,pad=0.05" if round_ else "square,pad=0.05"
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=style,
                                    facecolor=color, edgecolor="0.3"))
        ax.text(x, y, text, ha="center", va="center", fontsize=10)

    def arrow(x0, y0, x1, y1, color="0.3"):
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12,
                                     color=color, lw=1.2))

    state_y, gate_y, input_y = 4.2, 2.2, 0.6
    ax.text(0.2, state_y, "$c_{t-1}$", fontsize=12, va="center")
    ax.text(11.3, state_y, "$c_t$", fontsize=12, va="center")
    ax.text(0.2, input_y + 0.9, "$h_{t-1}$", fontsize=12, va="center")
    ax.text(11.3, 1.5, "$h_t$", fontsize=12, va="center")
    node(2.0, input_y, "$[h_{t-1},\\, x_t]$", "#fdf0e0", w=1.8)
    arrow(0.7, input_y + 0.75, 1.4, input_y + 0.32)
    ax.text(2.0, input_y - 0.55, "$x_t$: this event", ha="center", fontsize=8, color="0.3")
    gates = [(3.6, "$f_t = \\sigma(\\cdot)$", "forget"), (5.4, "$i_t = \\sigma(\\cdot)$", "input"),
             (7.2, "$g_t = \\tanh(\\cdot)$", "candidate"), (9.0, "$o_t = \\sigma(\\cdot)$", "output")]
    for x, label, name in gates:
        node(x, gate_y, label, "#e8eef7", w=1.6)
        ax.text(x + 0.85, gate_y + 0.45, name, ha="right", fontsize=8, color="0.3")
        arrow(2.9, input_y + 0.1, x - 0.3, gate_y - 0.32)
    arrow(0.8, state_y, 3.35, state_y, "#c44e52")
    node(3.6, state_y, "$\\times$", "#fbe3e4", w=0.5, h=0.5)
    arrow(3.6, gate_y + 0.32, 3.6, state_y - 0.27)
    node(6.3, 3.2, "$\\times$", "#fbe3e4", w=0.5, h=0.5)
    arrow(5.4, gate_y + 0.32, 6.1, 3.0)
    arrow(7.2, gate_y + 0.32, 6.5, 3.0)
    arrow(3.85, state_y, 6.05, state_y, "#c44e52")
    node(6.3, state_y, "$+$", "#fbe3e4", w=0.5, h=0.5)
    arrow(6.3, 3.45, 6.3, state_y - 0.27)
    arrow(6.55, state_y, 11.1, state_y, "#c44e52")
    node(10.2, 3.2, "$\\tanh$", "#fbe3e4", w=0.7, h=0.5)
    arrow(10.2, state_y, 10.2, 3.45)
    node(10.2, 1.5, "$\\times$", "#fbe3e4", w=0.5, h=0.5)
    arrow(10.2, 2.95, 10.2, 1.75)
    arrow(9.0, gate_y - 0.32, 9.95, 1.5)
    arrow(10.45, 1.5, 11.1, 1.5)
    ax.text(6.3, 4.7, "cell state: changed only by × forget and + input × candidate",
            ha="center", fontsize=9, color="#c44e52")
    ax.set_title("One LSTM step")
    return ax


def plot_memory_sweep(table: pd.DataFrame, points: str = "session openings",
                      axes: np.ndarray | None = None) -> np.ndarray:
    """Chapter 6's memory figure from :func:`interest_lib.recipes.memory_sweep.memory_sweep`.

    Left: NDCG@10 at ``points`` of the oracle, the best order-free baseline, the LSTM and the LSTM
    with its recurrent state zeroed, against the simulator's memory. Right: what the recurrent
    state adds (LSTM − zeroed, with its 95 % paired interval) against what the order of the data
    tells the oracle (its lead over the best order-free baseline), one point per memory setting,
    for every set of points of the table.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    left, right = axes
    part = table.xs(points, level="points")
    styles = {"oracle": ("#c44e52", "-", "o"), "best order-free baseline": ("0.45", ":", "s"),
              "LSTM": ("#4c72b0", "-", "^"), "LSTM, recurrent state zeroed": ("#4c72b0", "--", "v")}
    for column, (color, line, marker) in styles.items():
        left.plot(part.index, part[column], color=color, linestyle=line, marker=marker,
                  label=column)
    left.set_xlabel("memory of the simulated log")
    left.set_ylabel(f"NDCG@10 at {points}")
    left.legend(fontsize=8)
    for (label, group), color in zip(table.groupby(level="points", sort=False),
                                     ("#4c72b0", "#dd8452")):
        x, y = group["order tells the oracle"], group["recurrence adds"]
        right.errorbar(x, y, yerr=[y - group["low"], group["high"] - y], color=color,
                       marker="o", capsize=3, label=label)
        for (memory, _), xi, yi in zip(group.index, x, y):
            right.annotate(f"{memory:g}", (xi, yi), textcoords="offset points", xytext=(4, 4),
                           fontsize=7, color=color)
    right.axhline(0.0, color="0.6", lw=0.8)
    right.set_xlabel("what order tells the oracle (NDCG@10 over the best order-free baseline)")
    right.set_ylabel("what the recurrent state adds")
    right.legend(fontsize=8, title="memory beside each point", title_fontsize=7)
    return axes
