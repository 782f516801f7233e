"""Aggregation of per-video metrics into the comparison table and plots.

Per prompt: alignment and consistency are averaged over the prompt's videos (seeds);
diversity is the prompt's own value. Per method (and per method x motion): the mean over
prompts, with a 95% percentile-bootstrap confidence interval over prompts (none when a
method has a single prompt). In the toy world the ground-truth motion metric (the percentage
of videos whose subject does the prompt's motion, and the motion's magnitude, and the subject's consistency) is aggregated
the same way and shown beside the CLIP metrics.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .config import METHOD_LABELS
from .plots import ARROWS, METRICS, plot_metrics, plot_motion_heatmap, plot_tradeoff
from .video_io import atomic_path

#: The poster's table (the reference numbers shown beside ours).
POSTER = {
    "text2video_zero": {"alignment": 27.84, "consistency": 94.10, "diversity": 82.26},
    "lamp": {"alignment": 29.01, "consistency": 98.12, "diversity": 86.51},
    "ours_noise": {"alignment": 23.37, "consistency": 94.91, "diversity": 96.66},
    "ours_latents": {"alignment": 29.28, "consistency": 97.79, "diversity": 86.64},
}


#: The toy world's motion metric (per video: see metrics.motion_scores), when evaluated.
MOTION_METRICS = ("motion_correct", "motion_magnitude", "subject_consistency")
HEADINGS = {"alignment": "Alignment", "consistency": "Consistency", "diversity": "Diversity",
            "motion_correct": "Motion correct %", "motion_magnitude": "Motion magnitude",
            "subject_consistency": "Subject consistency"}
#: Better when higher, lower, or nearer 1 (the training clips' magnitude).
MOTION_ARROWS = {"motion_correct": "↑", "motion_magnitude": "→1", "subject_consistency": "↑"}


def metrics_of(frame: pd.DataFrame) -> list[str]:
    """The metrics present in a table: the CLIP ones, then the motion metric if evaluated."""
    return list(METRICS) + [m for m in MOTION_METRICS if m in frame.columns]


def _arrow(metric: str) -> str:
    return ARROWS.get(metric) or MOTION_ARROWS[metric]


def per_prompt(videos: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, motion, prompt_id): mean alignment/consistency (and motion metric)
    over the seeds, the diversity."""
    keys = ["method", "motion", "prompt_id", "prompt"]
    grouped = videos.groupby(keys, sort=True)
    table = grouped[["alignment", "consistency", *metrics_of(videos)[len(METRICS):]]].mean()
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


def _group_rng(seed: int, key: tuple) -> np.random.Generator:
    """A generator of its own per group, so that a group's CI never depends on which other
    groups (methods, motions) are in the table."""
    return np.random.default_rng([seed, zlib.crc32("\x1f".join(map(str, key)).encode())])


def summarise(prompts: pd.DataFrame, by: list[str], samples: int, seed: int) -> pd.DataFrame:
    """Per group of ``by``: the mean over prompts of each metric and its 95% bootstrap CI."""
    rows = []
    for key, group in prompts.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        rng = _group_rng(seed, key)
        row = dict(zip(by, key))
        row["n_prompts"] = len(group)
        row["n_videos"] = int(group["n_videos"].sum())
        for metric in metrics_of(prompts):
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
    motion = metrics_of(table)[len(METRICS):]
    header = "| Model | " + " | ".join(
        f"{m.capitalize()} {ARROWS[m]} (ours [95% CI]) | {m.capitalize()} (poster)" for m in METRICS
    ) + "".join(f" | {HEADINGS[m]} {MOTION_ARROWS[m]} [95% CI]" for m in motion) + " | Prompts | Videos |"
    lines = [header, "|" + "---|" * (3 + 2 * len(METRICS) + len(motion))]
    for row in table.itertuples(index=False):
        row = row._asdict()
        cells = [row["label"]]
        for metric in METRICS:
            cells.append(_cell(row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]))
            poster = row[f"poster_{metric}"]
            cells.append(f"{poster:.2f}" if math.isfinite(poster) else "–")
        cells += [_cell(row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"]) for m in motion]
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
    arrows = {"alignment": r"$\uparrow$", "consistency": r"$\uparrow$", "diversity": r"$\downarrow$",
              "motion_correct": r"$\uparrow$", "motion_magnitude": r"$\to 1$", "subject_consistency": r"$\uparrow$"}
    motion = metrics_of(table)[len(METRICS):]
    lines = [
        r"\begin{tabular}{l" + "rr" * len(METRICS) + "r" * len(motion) + "}",
        r"\toprule",
        "Model & " + " & ".join(rf"\multicolumn{{2}}{{c}}{{{m.capitalize()} {arrows[m]}}}" for m in METRICS)
        + "".join(f" & {_latex_escape(HEADINGS[m])} {arrows[m]}" for m in motion) + r" \\",
        " & " + " & ".join(["ours", "poster"] * len(METRICS)) + " & ours" * len(motion) + r" \\",
        r"\midrule",
    ]
    for row in table.itertuples(index=False):
        row = row._asdict()
        cells = [_latex_escape(row["label"])]
        for metric in METRICS:
            cells.append(_latex_cell(row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]))
            cells.append(_latex_cell(row[f"poster_{metric}"]))
        cells += [_latex_cell(row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"]) for m in motion]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def motions_markdown(motions: pd.DataFrame, methods: list[str]) -> str:
    """Per-motion breakdown: one row per (motion, method), each metric with its 95% CI."""
    metrics = metrics_of(motions)
    header = "| Motion | Model | " + " | ".join(f"{HEADINGS[m]} {_arrow(m)}" for m in metrics) + " | Prompts |"
    lines = [header, "|" + "---|" * (3 + len(metrics))]
    order = {m: i for i, m in enumerate(methods)}
    ranked = motions[motions["method"].isin(methods)]
    ranked = ranked.assign(_order=ranked["method"].map(order)).sort_values(["motion", "_order"], kind="stable")
    for row in ranked.itertuples(index=False):
        row = row._asdict()
        cells = [row["motion"], METHOD_LABELS[row["method"]]]
        cells += [_cell(row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"]) for m in metrics]
        lines.append("| " + " | ".join(cells + [str(row["n_prompts"])]) + " |")
    return "\n".join(lines) + "\n"


def _write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def aggregate(metric_csvs: list[str | Path], methods: list[str], out: dict, samples: int, seed: int) -> pd.DataFrame:
    """Read per-video metric CSVs and write the tables and plots named in ``out``.

    ``out`` keys: videos (all per-video rows), prompts (per prompt), motions (per method x
    motion, CSV) and motions_md, table_csv, table_md, table_tex, and the figures
    metrics_png/_svg, heatmap_png/_svg, tradeoff_png/_svg.
    """
    videos = pd.concat([pd.read_csv(p) for p in metric_csvs], ignore_index=True)
    table = comparison_table(videos, methods, samples, seed)
    prompts = per_prompt(videos)
    motions = summarise(prompts, ["method", "motion"], samples, seed)
    for key, frame in (("videos", videos), ("prompts", prompts), ("motions", motions), ("table_csv", table)):
        with atomic_path(out[key]) as tmp:
            frame.to_csv(tmp, index=False)
    _write_text(out["table_md"], markdown_table(table))
    _write_text(out["table_tex"], latex_table(table))
    _write_text(out["motions_md"], motions_markdown(motions, methods))
    plot_metrics(table, [out["metrics_png"], out["metrics_svg"]])
    plot_motion_heatmap(motions, methods, [out["heatmap_png"], out["heatmap_svg"]])
    plot_tradeoff(table, [out["tradeoff_png"], out["tradeoff_svg"]])
    return table
