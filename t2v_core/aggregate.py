"""Aggregation of per-video metrics into the comparison table and plots.

Per prompt: per-video metrics are averaged over the prompt's videos (seeds); a per-prompt
metric (the diversity readings) is the prompt's own value; a metric with readings (diversity)
takes the values of the reading the config chooses. Per method (and per method x motion): the mean
over prompts, with a 95% percentile-bootstrap confidence interval over prompts (none when a
method has a single prompt). A metric computed on some videos only (``computed_on``: VBench's
temporal flickering on the static ones) is, as VBench averages it, the mean over the videos
kept, its interval from resampling prompts with their kept videos, and the tables give how
many were kept. Which metrics, their headings, arrows and the poster's numbers
come from the metric table (:mod:`t2v_core.metrics.registry`) and the method registry; a
metric is shown when the per-video rows have its column.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .methods import get_method
from .metrics.registry import chosen_readings, get_metric, metrics, poster_metrics, table_metrics
from .plots import plot_metrics, plot_motion_heatmap, plot_tradeoff
from .video_io import atomic_path


def metrics_of(frame: pd.DataFrame, table: str | None = None) -> list:
    """The metrics (specs) present in a table of per-video, per-prompt or summary rows (of those
    that ``table``, "comparison" or "motions", shows)."""
    columns = set(frame.columns)
    return [m for m in table_metrics(table=table) if m.column in columns or m.name in columns]


def per_prompt(videos: pd.DataFrame, readings: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per (method, motion, prompt_id): each per-video metric's mean over the seeds,
    each per-prompt metric's value; a metric with readings gets the values of the one that
    ``readings`` (metric -> reading, as :func:`chosen_readings`) names, or of its default."""
    keys = ["method", "motion", "prompt_id", "prompt"]
    grouped = videos.groupby(keys, sort=True)
    present = metrics_of(videos)
    table = grouped[[m.column for m in present if m.per == "video"]].mean()
    for metric in [m for m in present if m.computed_on]:
        table[kept_column(metric)] = grouped[metric.column].count()
    for metric in [m for m in present if m.per != "video"]:
        table[metric.name] = grouped[metric.column].first()
    chosen = readings or chosen_readings({})
    for metric in [m for m in metrics() if m.readings]:
        reading = chosen[metric.name]
        if get_metric(reading).column in videos.columns:
            table[metric.name] = table[reading]
    table["n_videos"] = grouped.size()
    return table.reset_index()


def kept_column(metric) -> str:
    """The column of how many videos a metric computed on some videos only kept."""
    return f"{metric.name}_kept"


def bootstrap_ci(values: np.ndarray, samples: int, rng: np.random.Generator, level=0.95, weights=None):
    """Percentile bootstrap CI of the mean (with ``weights``: of the weighted mean, resampling
    values with their weights); (nan, nan) with fewer than 2 finite values of positive weight."""
    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values) if weights is None else np.isfinite(values) & (np.asarray(weights) > 0)
    values = values[keep]
    if len(values) < 2:
        return math.nan, math.nan
    if weights is None:
        means = rng.choice(values, size=(samples, len(values)), replace=True).mean(axis=1)
    else:
        weights = np.asarray(weights, dtype=float)[keep]
        drawn = rng.integers(0, len(values), size=(samples, len(values)))
        means = (values[drawn] * weights[drawn]).sum(axis=1) / weights[drawn].sum(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _group_rng(seed: int, key: tuple) -> np.random.Generator:
    """A generator of its own per group and metric (the key's last item), so that a CI never
    depends on which other groups (methods, motions) or metrics are in the table."""
    return np.random.default_rng([seed, zlib.crc32("\x1f".join(map(str, key)).encode())])


def summarise(prompts: pd.DataFrame, by: list[str], samples: int, seed: int) -> pd.DataFrame:
    """Per group of ``by``: the mean over prompts of each metric and its 95% bootstrap CI."""
    rows = []
    for key, group in prompts.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n_prompts"] = len(group)
        row["n_videos"] = int(group["n_videos"].sum())
        for spec in metrics_of(prompts):
            metric = spec.name
            values = group[metric].to_numpy(dtype=float)
            rng = _group_rng(seed, (*key, metric))
            if spec.computed_on:  # the mean over the videos kept: prompts weighted by theirs
                kept = group[kept_column(spec)].to_numpy(dtype=float)
                used = np.isfinite(values) & (kept > 0)
                row[kept_column(spec)] = int(kept.sum())
                row[metric] = float((values[used] * kept[used]).sum() / kept[used].sum()) if used.any() else math.nan
                row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = bootstrap_ci(values, samples, rng, weights=kept)
                continue
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


def _metric_cell(metric, row: dict) -> str:
    """A summary row's cell of ``metric``; for one computed on some videos only, with how many
    of the row's videos it kept ("n/a (0 of 6 kept)" when none)."""
    name = metric.name
    cell = _cell(row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"])
    if metric.computed_on:
        cell += f" ({row[kept_column(metric)]} of {row['n_videos']} kept)"
    return cell


def comparison_table(videos: pd.DataFrame, methods: list[str], samples: int, seed: int,
                     readings: dict[str, str] | None = None) -> pd.DataFrame:
    prompts = per_prompt(videos, readings)
    table = summarise(prompts, ["method"], samples, seed).set_index("method")
    missing = [m for m in methods if m not in table.index]
    if missing:
        raise ValueError(f"no evaluated videos for methods {missing}")
    table = table.loc[methods].reset_index()
    table.insert(1, "label", [get_method(m).label for m in table["method"]])
    for metric in poster_metrics():
        table[f"poster_{metric.name}"] = [get_method(m).poster.get(metric.name, math.nan) for m in table["method"]]
    return table


def markdown_table(table: pd.DataFrame) -> str:
    """The comparison in Markdown: a poster metric's column of ours [95% CI] beside the poster's,
    then the other metrics, then the numbers of prompts and videos."""
    shown, headings = metrics_of(table, "comparison"), []
    for metric in shown:
        if metric.poster:
            headings += [f"{metric.heading} {metric.arrow} (ours [95% CI])", f"{metric.heading} (poster)"]
        else:
            headings.append(f"{metric.heading} {metric.arrow} [95% CI]")
    lines = ["| Model | " + " | ".join(headings) + " | Prompts | Videos |", "|" + "---|" * (3 + len(headings))]
    for row in table.itertuples(index=False):
        row = row._asdict()
        cells = [row["label"]]
        for metric in shown:
            name = metric.name
            cells.append(_metric_cell(metric, row))
            if metric.poster:
                poster = row[f"poster_{name}"]
                cells.append(f"{poster:.2f}" if math.isfinite(poster) else "–")
        cells += [str(row["n_prompts"]), str(row["n_videos"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
    return "".join(special.get(char, char) for char in text)


def _latex_cell(value, low=math.nan, high=math.nan) -> str:
    """Math mode (a real minus sign); ± half the CI's width, nothing without a CI."""
    if not math.isfinite(value):
        return "--"
    if math.isfinite(low):
        return f"${value:.2f} \\pm {(high - low) / 2:.2f}$"
    return f"${value:.2f}$"


def latex_table(table: pd.DataFrame) -> str:
    """The comparison as a booktabs table: ours (mean ± half the 95% CI) beside the poster."""
    shown = metrics_of(table, "comparison")
    columns = "".join("rr" if m.poster else "r" for m in shown)
    heads = [rf"\multicolumn{{2}}{{c}}{{{m.heading} {m.latex_arrow}}}" if m.poster
             else f"{_latex_escape(m.heading)} {m.latex_arrow}" for m in shown]
    subheads = [" & ".join(["ours", "poster"]) if m.poster else "ours" for m in shown]
    lines = [
        r"\begin{tabular}{l" + columns + "}",
        r"\toprule",
        "Model & " + " & ".join(heads) + r" \\",
        " & " + " & ".join(subheads) + r" \\",
        r"\midrule",
    ]
    for row in table.itertuples(index=False):
        row = row._asdict()
        cells = [_latex_escape(row["label"])]
        for metric in shown:
            name = metric.name
            cells.append(_latex_cell(row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"]))
            if metric.computed_on:  # how many videos it was computed on, of how many
                cells[-1] += f" ({row[kept_column(metric)]}/{row['n_videos']})"
            if metric.poster:
                cells.append(_latex_cell(row[f"poster_{name}"]))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def motions_markdown(motions: pd.DataFrame, methods: list[str]) -> str:
    """Per-motion breakdown: one row per (motion, method), each metric with its 95% CI."""
    metrics = metrics_of(motions, "motions")
    header = "| Motion | Model | " + " | ".join(f"{m.heading} {m.arrow}" for m in metrics) + " | Prompts |"
    lines = [header, "|" + "---|" * (3 + len(metrics))]
    order = {m: i for i, m in enumerate(methods)}
    ranked = motions[motions["method"].isin(methods)]
    ranked = ranked.assign(_order=ranked["method"].map(order)).sort_values(["motion", "_order"], kind="stable")
    for row in ranked.itertuples(index=False):
        row = row._asdict()
        cells = [row["motion"], get_method(row["method"]).label]
        cells += [_metric_cell(m, row) for m in metrics]
        lines.append("| " + " | ".join(cells + [str(row["n_prompts"])]) + " |")
    return "\n".join(lines) + "\n"


def _write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def aggregate(metric_csvs: list[str | Path], methods: list[str], out: dict, samples: int, seed: int,
              poster_models: bool = True, readings: dict[str, str] | None = None) -> pd.DataFrame:
    """Read per-video metric CSVs and write the tables and plots named in ``out``; the figures
    draw the poster's numbers only with ``poster_models`` (the run used the poster's models).
    ``readings``: the reading of each metric that has several (:func:`chosen_readings`).

    ``out`` keys: videos (all per-video rows), prompts (per prompt), motions (per method x
    motion, CSV) and motions_md, table_csv, table_md, table_tex, and the figures
    metrics_png/_svg, heatmap_png/_svg, tradeoff_png/_svg.
    """
    videos = pd.concat([pd.read_csv(p) for p in metric_csvs], ignore_index=True)
    table = comparison_table(videos, methods, samples, seed, readings)
    prompts = per_prompt(videos, readings)
    motions = summarise(prompts, ["method", "motion"], samples, seed)
    for key, frame in (("videos", videos), ("prompts", prompts), ("motions", motions), ("table_csv", table)):
        with atomic_path(out[key]) as tmp:
            frame.to_csv(tmp, index=False)
    _write_text(out["table_md"], markdown_table(table))
    _write_text(out["table_tex"], latex_table(table))
    _write_text(out["motions_md"], motions_markdown(motions, methods))
    plot_metrics(table, [out["metrics_png"], out["metrics_svg"]], show_poster=poster_models)
    plot_motion_heatmap(motions, methods, [out["heatmap_png"], out["heatmap_svg"]])
    plot_tradeoff(table, [out["tradeoff_png"], out["tradeoff_svg"]], show_poster=poster_models)
    return table
