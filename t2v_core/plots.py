"""Figures of the comparison, each written as PNG and SVG (atomically).

Each ``plot_*`` returns its (closed) figure, so that tests can read what was drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .methods import get_method
from .metrics.registry import poster_metrics
from .video_io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, paths) -> None:
    """``fig`` to every path (format from the suffix), then closed. SVG text stays text (not
    glyph outlines), so labels and numbers can be edited and searched."""
    plt = _pyplot()
    # a fixed salt for the ids of the SVG's elements (random otherwise): same numbers, same file
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "t2v"}):
        for path in paths:
            with atomic_path(path) as tmp:
                kind = Path(path).suffix[1:]
                # no date in an SVG: the same numbers give the same file
                metadata = {"Date": None} if kind == "svg" else None
                fig.savefig(tmp, dpi=120, format=kind, bbox_inches="tight", metadata=metadata)
    plt.close(fig)


def _errors(table: pd.DataFrame, metric: str) -> np.ndarray:
    values = table[metric].to_numpy(dtype=float)
    low = values - table[f"{metric}_ci_low"].to_numpy(dtype=float)
    high = table[f"{metric}_ci_high"].to_numpy(dtype=float) - values
    return np.nan_to_num(np.vstack([low, high]))  # no CI (one prompt): no bar


def plot_metrics(table: pd.DataFrame, paths, show_poster: bool = True):
    """One panel per metric the poster reports: our mean per method as a dot with its 95% CI, on
    an axis zoomed to what was measured (bars from 0 would hide differences of a point); the
    poster's numbers as diamonds when ``show_poster`` (only when the run used the poster's
    models: another model's numbers are not comparable)."""
    plt = _pyplot()
    metrics = poster_metrics()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8))
    x = np.arange(len(table))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        ax.errorbar(x, table[metric.name].to_numpy(dtype=float), yerr=_errors(table, metric.name), fmt="o",
                    capsize=4, color="tab:blue", label="measured (95% CI over prompts)")
        if show_poster:
            ax.scatter(x, table[f"poster_{metric.name}"].to_numpy(dtype=float), color="tab:red", marker="D",
                       zorder=3, label="poster")
        ax.set_xticks(x, table["label"], rotation=30, ha="right")
        ax.set_xlim(-0.5, len(table) - 0.5)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(f"{metric.heading} {metric.arrow}")
        ax.set_ylabel(metric.unit)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    save_figure(fig, paths)
    return fig


def plot_motion_heatmap(motions: pd.DataFrame, methods: list[str], paths):
    """Per metric the poster reports, a methods x motions heatmap of the mean over the motion's
    prompts, annotated."""
    plt = _pyplot()
    names = sorted(motions["motion"].unique())
    metrics = poster_metrics()
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.2 * len(names) * len(metrics) + 4, 0.6 * len(methods) + 2))
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        grid = motions.pivot(index="method", columns="motion", values=metric.name).reindex(index=methods, columns=names)
        values = grid.to_numpy(dtype=float)
        image = ax.imshow(values, cmap="viridis_r" if metric.lower_is_better else "viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(values):
            r, g, b, _ = image.cmap(image.norm(value))  # dark text on light cells
            ax.text(j, i, "n/a" if np.isnan(value) else f"{value:.2f}", ha="center", va="center",
                    color="black" if 0.3 * r + 0.6 * g + 0.1 * b > 0.5 else "white", fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_yticks(range(len(methods)), [get_method(m).label for m in methods])
        ax.set_title(f"{metric.heading} {metric.arrow}")
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    save_figure(fig, paths)
    return fig


def plot_tradeoff(table: pd.DataFrame, paths, show_poster: bool = True):
    """Alignment against diversity per method (95% CIs as error bars), the poster's beside when
    ``show_poster`` (see :func:`plot_metrics`)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for index, row in enumerate(table.itertuples(index=False)):
        colour = f"C{index}"
        one = table.iloc[[index]]
        ax.errorbar(row.diversity, row.alignment, xerr=_errors(one, "diversity"),
                    yerr=_errors(one, "alignment"), fmt="o", color=colour, capsize=3, label=row.label)
        if show_poster and np.isfinite(row.poster_alignment):
            ax.scatter(row.poster_diversity, row.poster_alignment, marker="D", facecolors="none",
                       edgecolors=colour)
    ax.set_xlabel("Diversity ↓ (cross-seed similarity; left = more diverse)")
    ax.set_ylabel("Alignment ↑")
    ax.set_title("Alignment vs diversity" + (" (hollow diamonds: poster)" if show_poster else ""))
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    save_figure(fig, paths)
    return fig
