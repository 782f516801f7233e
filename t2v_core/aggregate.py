"""Aggregation of per-video metrics into the comparison table and plots.

Per prompt: alignment and consistency are averaged over the prompt's videos (seeds);
diversity is the prompt's own value. Per method (and per method x motion): the mean over
prompts, with a 95% percentile-bootstrap confidence interval over prompts (none when a
method has a single prompt).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .config import METHOD_LABELS
from .video_io import atomic_path

METRICS = ("alignment", "consistency", "diversity")
ARROWS = {"alignment": "↑", "consistency": "↑", "diversity": "↓"}
#: The poster's table (the reference numbers shown beside ours).
POSTER = {
    "text2video_zero": {"alignment": 27.84, "consistency": 94.10, "diversity": 82.26},
    "lamp": {"alignment": 29.01, "consistency": 98.12, "diversity": 86.51},
    "ours_noise": {"alignment": 23.37, "consistency": 94.91, "diversity": 96.66},
    "ours_latents": {"alignment": 29.28, "consistency": 97.79, "diversity": 86.64},
}


def per_prompt(videos: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, motion, prompt_id): mean alignment/consistency, the diversity."""
    keys = ["method", "motion", "prompt_id", "prompt"]
    grouped = videos.groupby(keys, sort=True)
    table = grouped[["alignment", "consistency"]].mean()
    table["diversity"] = grouped["prompt_diversity"].first()
    table["n_videos"] = grouped.size()
    return table.reset_index()


def bootstrap_ci(values: np.ndarray, samples: int, rng: np.random.Generator, level=0.95):
    """Percentile bootstrap CI of the mean; (nan, nan) with fewer than 2 finite values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return math.nan, math.nan
    means = rng.choice(values, size=(samples, len(values)), replace=True).mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def summarise(prompts: pd.DataFrame, by: list[str], samples: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in prompts.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n_prompts"] = len(group)
        row["n_videos"] = int(group["n_videos"].sum())
        for metric in METRICS:
            values = group[metric].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            row[metric] = float(finite.mean()) if len(finite) else math.nan
            row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = bootstrap_ci(values, samples, rng)
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(value, low, high) -> str:
    if not math.isfinite(value):
        return "n/a"
    if math.isfinite(low):
        return f"{value:.2f} [{low:.2f}, {high:.2f}]"
    return f"{value:.2f}"


def comparison_table(videos: pd.DataFrame, methods: list[str], samples: int, seed: int) -> pd.DataFrame:
    prompts = per_prompt(videos)
    table = summarise(prompts, ["method"], samples, seed).set_index("method")
    missing = [m for m in methods if m not in table.index]
    if missing:
        raise ValueError(f"no evaluated videos for methods {missing}")
    table = table.loc[methods].reset_index()
    table.insert(1, "label", [METHOD_LABELS[m] for m in table["method"]])
    for metric in METRICS:
        table[f"poster_{metric}"] = [POSTER.get(m, {}).get(metric, math.nan) for m in table["method"]]
    return table


def markdown_table(table: pd.DataFrame) -> str:
    header = "| Model | " + " | ".join(
        f"{m.capitalize()} {ARROWS[m]} (ours [95% CI]) | {m.capitalize()} (poster)" for m in METRICS
    ) + " | Prompts | Videos |"
    lines = [header, "|" + "---|" * (3 + 2 * len(METRICS))]
    for row in table.itertuples(index=False):
        row = row._asdict()
        cells = [row["label"]]
        for metric in METRICS:
            cells.append(_cell(row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]))
            poster = row[f"poster_{metric}"]
            cells.append(f"{poster:.2f}" if math.isfinite(poster) else "–")
        cells += [str(row["n_prompts"]), str(row["n_videos"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_metrics(table: pd.DataFrame, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.8))
    x = np.arange(len(table))
    for ax, metric in zip(axes, METRICS):
        values = table[metric].to_numpy(dtype=float)
        low = values - table[f"{metric}_ci_low"].to_numpy(dtype=float)
        high = table[f"{metric}_ci_high"].to_numpy(dtype=float) - values
        errors = np.nan_to_num(np.vstack([low, high]))
        ax.bar(x, values, yerr=errors, capsize=4, color="tab:blue", label="measured")
        poster = table[f"poster_{metric}"].to_numpy(dtype=float)
        ax.scatter(x, poster, color="tab:red", marker="D", zorder=3, label="poster")
        ax.set_xticks(x, table["label"], rotation=30, ha="right")
        ax.set_title(f"{metric.capitalize()} {ARROWS[metric]}")
        ax.set_ylabel("CLIP cosine x 100")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=Path(path).suffix[1:])
    plt.close(fig)


def aggregate(metric_csvs: list[str | Path], methods: list[str], out: dict, samples: int, seed: int) -> pd.DataFrame:
    """Read per-video metric CSVs and write the tables and plot named in ``out``.

    ``out`` keys: videos (all per-video rows), prompts (per-prompt), motions (per method x
    motion), table_csv, table_md, plot.
    """
    videos = pd.concat([pd.read_csv(p) for p in metric_csvs], ignore_index=True)
    table = comparison_table(videos, methods, samples, seed)
    prompts = per_prompt(videos)
    motions = summarise(prompts, ["method", "motion"], samples, seed)
    for key, frame in (("videos", videos), ("prompts", prompts), ("motions", motions), ("table_csv", table)):
        with atomic_path(out[key]) as tmp:
            frame.to_csv(tmp, index=False)
    with atomic_path(out["table_md"]) as tmp:
        tmp.write_text(markdown_table(table), encoding="utf-8")
    plot_metrics(table, out["plot"])
    return table
