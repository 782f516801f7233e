"""Aggregation: per-prompt means, bootstrap CIs over prompts, the tables and figures."""

import math

import numpy as np
import pandas as pd
import pytest

from t2v_core.aggregate import (
    aggregate, bootstrap_ci, comparison_table, latex_table, markdown_table, motions_markdown, per_prompt,
    summarise,
)


def videos_table(values: dict[str, list[float]], seeds=(0, 1)) -> pd.DataFrame:
    """Per-video rows: method -> one alignment per prompt (consistency = alignment + 50,
    diversity = 80 + prompt index); seed k adds k to alignment so seeds must be averaged."""
    rows = []
    for method, per_prompt_values in values.items():
        for p, value in enumerate(per_prompt_values):
            for seed in seeds:
                rows.append({"method": method, "motion": f"m{p % 2}", "prompt_id": f"p{p}", "prompt": f"prompt {p}",
                             "seed": seed, "alignment": value + seed, "consistency": value + 50,
                             "prompt_diversity": 80.0 + p})
    return pd.DataFrame(rows)


def test_per_prompt_averages_seeds_and_keeps_the_prompts_diversity():
    prompts = per_prompt(videos_table({"lamp": [10.0, 20.0]}, seeds=(0, 1, 2)))
    assert list(prompts["alignment"]) == [11.0, 21.0]  # mean of value + 0, 1, 2
    assert list(prompts["diversity"]) == [80.0, 81.0] and list(prompts["n_videos"]) == [3, 3]


def test_bootstrap_ci_contains_the_mean_and_is_seeded():
    values = np.array([10.0, 12.0, 9.0, 15.0, 11.0, 13.0])
    low, high = bootstrap_ci(values, 500, np.random.default_rng(0))
    assert low < values.mean() < high and high - low < values.max() - values.min()
    assert (low, high) == bootstrap_ci(values, 500, np.random.default_rng(0))
    assert all(map(math.isnan, bootstrap_ci(np.array([3.0]), 500, np.random.default_rng(0))))
    assert all(map(math.isnan, bootstrap_ci(np.array([3.0, np.nan]), 500, np.random.default_rng(0))))


def test_summary_means_over_prompts_with_ci_and_none_for_a_single_prompt():
    prompts = per_prompt(videos_table({"lamp": [10.0, 20.0, 30.0, 40.0], "per_frame_t2i": [5.0]}))
    summary = summarise(prompts, ["method"], 300, 0).set_index("method")
    assert summary.loc["lamp", "alignment"] == pytest.approx(25.5)
    assert summary.loc["lamp", "alignment_ci_low"] < 25.5 < summary.loc["lamp", "alignment_ci_high"]
    assert summary.loc["per_frame_t2i", "n_prompts"] == 1
    assert math.isnan(summary.loc["per_frame_t2i", "alignment_ci_low"])


def test_comparison_table_sits_beside_the_posters_numbers():
    methods = ["text2video_zero", "lamp", "ours_noise", "ours_latents", "per_frame_t2i"]
    table = comparison_table(videos_table({m: [10.0, 20.0] for m in methods[:-1]} | {"per_frame_t2i": [7.0]}),
                             methods, 200, 0)
    assert list(table["label"]) == ["Text2Video-Zero", "LAMP", "Ours (Noise)", "Ours (Latents)", "Per-frame T2I"]
    assert list(table["poster_alignment"][:4]) == [27.84, 29.01, 23.37, 29.28]
    assert math.isnan(table["poster_alignment"].iloc[4])
    markdown = markdown_table(table)
    assert "| Per-frame T2I | 7.50 | – |" in markdown  # one prompt: value, no fake interval
    assert "| LAMP | 15.50 [" in markdown
    latex = latex_table(table)
    assert latex.splitlines()[1] == r"\toprule" and r"\midrule" in latex and r"\bottomrule" in latex
    assert r"Per-frame T2I & 7.50 & -- &" in latex and r"LAMP & 15.50 $\pm$ " in latex
    with pytest.raises(ValueError, match="per_frame_t2i"):
        comparison_table(videos_table({"lamp": [1.0, 2.0]}), ["lamp", "per_frame_t2i"], 100, 0)


def test_aggregate_writes_tables_and_figures(tmp_path):
    methods = ["lamp", "ours_latents"]
    csvs = []
    for method in methods:
        path = tmp_path / f"{method}.csv"
        videos_table({method: [10.0, 20.0, 30.0]}).to_csv(path, index=False)
        csvs.append(path)
    names = {"videos": "videos.csv", "prompts": "prompts.csv", "motions": "motions.csv", "table_csv": "table.csv",
             "table_md": "table.md", "table_tex": "table.tex", "motions_md": "motions.md"}
    out = {key: tmp_path / "out" / name for key, name in names.items()}
    for key, stem in (("metrics", "metrics"), ("heatmap", "motion_heatmap"), ("tradeoff", "alignment_vs_diversity")):
        for kind in ("png", "svg"):
            out[f"{key}_{kind}"] = tmp_path / "out" / "plots" / f"{stem}.{kind}"
    aggregate(csvs, methods, out, 100, 0)
    assert pd.read_csv(out["table_csv"])["alignment"].tolist() == pytest.approx([20.5, 20.5])
    motions = motions_markdown(pd.read_csv(out["motions"]), methods)
    assert out["motions_md"].read_text() == motions and "| m0 | LAMP |" in motions
    for key in ("metrics", "heatmap", "tradeoff"):
        assert out[f"{key}_png"].read_bytes()[:4] == b"\x89PNG"
        assert "<svg" in out[f"{key}_svg"].read_text()[:1000]
    assert not list((tmp_path / "out").rglob(".*"))  # no temporary files left
