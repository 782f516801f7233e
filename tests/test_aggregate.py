"""Aggregation: per-prompt means, bootstrap CIs over prompts, the tables and figures."""

import math

import numpy as np
import pandas as pd
import pytest

from t2v_core.aggregate import (
    aggregate, bootstrap_ci, comparison_table, latex_table, markdown_table, per_prompt, summarise,
)
from t2v_core.methods import get_method
from t2v_core.plots import plot_metrics, plot_motion_heatmap, plot_tradeoff

POSTER_METHODS = ["text2video_zero", "lamp", "ours_noise", "ours_latents"]


def videos_table(values: dict[str, list[float]], seeds=(0, 1)) -> pd.DataFrame:
    """Per-video rows: method -> one alignment per prompt (consistency = alignment + 50; the
    diversity readings across prompts, seeds and frames 80, 90 and 70 + prompt index); seed k
    adds k to alignment so seeds must be averaged."""
    rows = []
    for method, per_prompt_values in values.items():
        for p, value in enumerate(per_prompt_values):
            for seed in seeds:
                rows.append({"method": method, "motion": f"m{p % 2}", "prompt_id": f"p{p}", "prompt": f"prompt {p}",
                             "seed": seed, "alignment": value + seed, "consistency": value + 50,
                             "prompt_diversity_prompts": 80.0 + p, "prompt_diversity_seeds": 90.0 + p,
                             "prompt_diversity_frames": 70.0 + p})
    return pd.DataFrame(rows)


def test_per_prompt_averages_seeds_and_keeps_the_prompts_diversity():
    prompts = per_prompt(videos_table({"lamp": [10.0, 20.0]}, seeds=(0, 1, 2)))
    assert list(prompts["alignment"]) == [11.0, 21.0]  # mean of value + 0, 1, 2
    assert list(prompts["diversity"]) == [80.0, 81.0] and list(prompts["n_videos"]) == [3, 3]


def test_the_diversity_shown_is_the_chosen_reading():
    videos = videos_table({"lamp": [10.0, 20.0]})
    assert list(per_prompt(videos)["diversity"]) == [80.0, 81.0]  # the default: across prompts
    seeds = per_prompt(videos, {"diversity": "diversity_seeds"})
    assert list(seeds["diversity"]) == [90.0, 91.0] and list(seeds["diversity_frames"]) == [70.0, 71.0]
    table = comparison_table(videos, ["lamp"], 100, 0, {"diversity": "diversity_frames"})
    assert table.loc[0, "diversity"] == pytest.approx(70.5)
    assert "Diversity across seeds" not in markdown_table(table)  # the readings: per motion only


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
    assert math.isnan(summary.loc["per_frame_t2i", "alignment_ci_high"])


def test_a_methods_ci_does_not_depend_on_the_other_methods():
    alone = summarise(per_prompt(videos_table({"ours_latents": [10.0, 14.0, 30.0]})), ["method"], 200, 0)
    both = per_prompt(videos_table({"lamp": [1.0, 50.0], "ours_latents": [10.0, 14.0, 30.0]}))
    beside = summarise(both, ["method"], 200, 0).set_index("method").loc["ours_latents"]
    columns = ["alignment_ci_low", "alignment_ci_high", "diversity_ci_low", "diversity_ci_high"]
    assert alone.set_index("method").loc["ours_latents", columns].tolist() == beside[columns].tolist()
    assert summarise(both, ["method"], 200, 1).set_index("method").loc["ours_latents", columns].tolist() != \
        beside[columns].tolist()  # but the seed counts


def test_a_metrics_ci_does_not_depend_on_the_other_metrics():
    videos = videos_table({"lamp": [10.0, 14.0, 30.0, 31.0]})
    fewer = videos.drop(columns=["consistency", "prompt_diversity_seeds"])
    columns = ["alignment_ci_low", "alignment_ci_high", "diversity_frames_ci_low", "diversity_frames_ci_high"]
    assert summarise(per_prompt(videos), ["method"], 200, 0)[columns].values.tolist() == \
        summarise(per_prompt(fewer), ["method"], 200, 0)[columns].values.tolist()


def test_comparison_table_sits_beside_the_posters_numbers():
    methods = ["text2video_zero", "lamp", "ours_noise", "ours_latents", "per_frame_t2i"]
    table = comparison_table(videos_table({m: [10.0, 20.0] for m in methods[:-1]} | {"per_frame_t2i": [7.0]}),
                             methods, 200, 0)
    assert list(table["label"]) == ["Text2Video-Zero", "LAMP", "Ours (Noise)", "Ours (Latents)", "Per-frame T2I"]
    assert list(table["poster_alignment"][:4]) == [27.84, 29.01, 23.37, 29.28]
    assert list(table["poster_consistency"][:4]) == [94.10, 98.12, 94.91, 97.79]
    assert list(table["poster_diversity"][:4]) == [82.26, 86.51, 96.66, 86.64]
    assert table.iloc[4][["poster_alignment", "poster_consistency", "poster_diversity"]].isna().all()
    lamp = table.set_index("method").loc["lamp"]
    markdown = markdown_table(table)
    assert "| Per-frame T2I | 7.50 | – | 57.00 | – | 80.00 | – | 1 | 2 |" in markdown  # no fake interval
    assert f"| LAMP | 15.50 [{lamp.alignment_ci_low:.2f}, {lamp.alignment_ci_high:.2f}] | 29.01 |" in markdown
    latex = latex_table(table)
    assert latex.splitlines()[1] == r"\toprule" and r"\midrule" in latex and latex.splitlines()[-2] == r"\bottomrule"
    assert r"Per-frame T2I & $7.50$ & -- & $57.00$ & -- & $80.00$ & -- \\" in latex.splitlines()
    half = (lamp.alignment_ci_high - lamp.alignment_ci_low) / 2
    assert latex.count(r" \\") == 2 + 5 and half > 0
    assert rf"LAMP & $15.50 \pm {half:.2f}$ & $29.01$ & " in latex
    with pytest.raises(ValueError, match="per_frame_t2i"):
        comparison_table(videos_table({"lamp": [1.0, 2.0]}), ["lamp", "per_frame_t2i"], 100, 0)


def test_latex_escapes_labels_and_uses_a_real_minus():
    table = comparison_table(videos_table({"ours_latents": [-3.0]}), ["ours_latents"], 100, 0)
    assert latex_table(table).splitlines()[5].startswith(r"Ours (Latents) & $-2.50$ & $29.28$ &")
    table["label"] = ["A_b & 50% #1 ~x^2 {$}"]
    row = latex_table(table).splitlines()[5]
    assert row.startswith(r"A\_b \& 50\% \#1 \textasciitilde{}x\textasciicircum{}2 \{\$\} & $-2.50$")


def _drawn_points(ax, kind):
    """The (x, y) of the markers of ``kind`` that are drawn (NaN ones are not)."""
    offsets = [np.ma.filled(c.get_offsets().astype(float), np.nan) for c in ax.collections if isinstance(c, kind)]
    return [tuple(xy) for xy in np.concatenate(offsets or [np.empty((0, 2))]) if np.isfinite(xy).all()]


def test_figures_draw_our_values_the_cis_and_the_posters_points():
    from matplotlib.collections import PathCollection

    methods = ["lamp", "per_frame_t2i"]
    table = comparison_table(videos_table({"lamp": [10.0, 20.0, 40.0], "per_frame_t2i": [7.0]}), methods, 200, 0)
    lamp = table.iloc[0]
    panels = plot_metrics(table, []).axes[:3]
    for ax, metric in zip(panels, ["alignment", "consistency", "diversity"]):
        dots = [line for line in ax.lines if line.get_marker() == "o"]
        assert len(dots) == 1 and list(dots[0].get_ydata()) == pytest.approx(table[metric].tolist())
        assert not ax.patches  # dots, no bars from 0
        assert _drawn_points(ax, PathCollection) == [(0, get_method("lamp").poster[metric])]  # none for per-frame T2I
        caps = sorted(y for line in ax.lines if line.get_marker() != "o" for y in line.get_ydata())
        assert caps == pytest.approx(sorted([lamp[f"{metric}_ci_low"], lamp[f"{metric}_ci_high"]] +
                                            [table[metric].iloc[1]] * 2))  # zero-length bar: no CI
    tradeoff = plot_tradeoff(table, []).axes[0]
    assert _drawn_points(tradeoff, PathCollection) == [(get_method("lamp").poster["diversity"], get_method("lamp").poster["alignment"])]
    points = [line.get_xydata()[0] for line in tradeoff.lines if line.get_marker() == "o"]
    assert np.ravel(points).tolist() == pytest.approx([81.0, 71.5 / 3, 80.0, 7.5])  # (diversity, alignment)
    assert [t.get_text() for t in tradeoff.get_legend().get_texts()] == ["LAMP", "Per-frame T2I"]
    prompts = per_prompt(videos_table({"lamp": [10.0, 20.0, 30.0, 70.0], "per_frame_t2i": [7.0]}))
    motions = summarise(prompts, ["method", "motion"], 100, 0)
    heatmaps = plot_motion_heatmap(motions, methods, []).axes[:3]
    # rows = methods, columns = motions m0 (prompts 0, 2), m1 (prompts 1, 3); per-frame T2I has no m1
    assert [t.get_text() for t in heatmaps[0].texts] == ["20.50", "45.50", "7.50", "n/a"]
    assert [t.get_text() for t in heatmaps[2].texts] == ["81.00", "82.00", "80.00", "n/a"]
    assert [t.get_text() for t in heatmaps[0].get_yticklabels()] == ["LAMP", "Per-frame T2I"]
    assert [t.get_text() for t in heatmaps[0].get_xticklabels()] == ["m0", "m1"]


def test_figures_zoom_to_what_was_measured_and_leave_out_the_poster_for_other_models():
    from matplotlib.collections import PathCollection

    methods = ["lamp", "ours_latents"]
    # values a point apart: an axis from 0 would flatten them
    table = comparison_table(videos_table({"lamp": [95.0, 96.0, 97.0], "ours_latents": [96.0, 97.0, 98.0]}),
                             methods, 200, 0)
    for ax, metric in zip(plot_metrics(table, [], show_poster=False).axes[:3], ["alignment", "consistency",
                                                                               "diversity"]):
        low, high = ax.get_ylim()
        assert low > table[f"{metric}_ci_low"].min() - 2 and high - low < 10  # a point: a tenth of the axis
        assert _drawn_points(ax, PathCollection) == []
    tradeoff = plot_tradeoff(table, [], show_poster=False).axes[0]
    assert _drawn_points(tradeoff, PathCollection) == [] and "poster" not in tradeoff.get_title()


def test_the_same_numbers_drawn_a_day_later_are_the_same_figure_files(tmp_path, monkeypatch):
    """A re-run after a kill must give the products of an uninterrupted one: an SVG carries its
    date and, unless salted, random ids for its elements."""
    import time

    from t2v_core.plots import save_figure

    table = comparison_table(videos_table({"lamp": [10.0, 20.0, 40.0], "per_frame_t2i": [7.0]}),
                             ["lamp", "per_frame_t2i"], 200, 0)
    first = [tmp_path / "first.svg", tmp_path / "first.png"]
    save_figure(plot_metrics(table, []), first)
    later_time = time.time() + 86400
    monkeypatch.setattr(time, "time", lambda: later_time)
    later = [tmp_path / "later.svg", tmp_path / "later.png"]
    save_figure(plot_metrics(table, []), later)
    for a, b in zip(first, later):
        assert a.read_bytes() == b.read_bytes(), a.suffix
    assert "<dc:date>" not in first[0].read_text()


def test_aggregate_writes_tables_and_figures(tmp_path):
    methods = ["lamp", "per_frame_t2i"]
    csvs = []
    for method in methods:
        path = tmp_path / f"{method}.csv"
        videos_table({method: [10.0, 20.0, 30.0, 70.0] if method == "lamp" else [5.0]}).to_csv(path, index=False)
        csvs.append(path)
    names = {"videos": "videos.csv", "prompts": "prompts.csv", "motions": "motions.csv", "table_csv": "table.csv",
             "table_md": "table.md", "table_tex": "table.tex", "motions_md": "motions.md"}
    out = {key: tmp_path / "out" / name for key, name in names.items()}
    for key, stem in (("metrics", "metrics"), ("heatmap", "motion_heatmap"), ("tradeoff", "alignment_vs_diversity")):
        for kind in ("png", "svg"):
            out[f"{key}_{kind}"] = tmp_path / "out" / "plots" / f"{stem}.{kind}"
    aggregate(csvs, methods, out, 100, 0)
    table = pd.read_csv(out["table_csv"]).set_index("method")
    assert table["alignment"].tolist() == pytest.approx([33.0, 5.5])
    assert table.loc["lamp", "poster_alignment"] == 29.01 and table.loc["per_frame_t2i"].filter(like="poster").isna().all()
    assert out["table_md"].read_text() == markdown_table(pd.read_csv(out["table_csv"]))
    assert r"Per-frame T2I & $5.50$ & -- &" in out["table_tex"].read_text()
    motions = pd.read_csv(out["motions"]).set_index(["method", "motion"])
    assert motions["alignment"].tolist() == pytest.approx([20.5, 45.5, 5.5])  # lamp m0, lamp m1, per-frame m0
    lamp_m0 = motions.loc[("lamp", "m0")]
    motions_md = out["motions_md"].read_text().splitlines()
    assert motions_md[2].startswith(f"| m0 | LAMP | 20.50 [{lamp_m0.alignment_ci_low:.2f}, {lamp_m0.alignment_ci_high:.2f}] |")
    assert "| Consistency ↑ | Diversity across prompts ↓ | Diversity across seeds ↓ | Diversity frame by frame ↓ |" \
        in motions_md[0]
    assert motions_md[3:] == ["| m0 | Per-frame T2I | 5.50 | 55.00 | 80.00 | 90.00 | 70.00 | 1 |", motions_md[4]]
    assert motions_md[4].startswith("| m1 | LAMP | 45.50 [")
    assert len(pd.read_csv(out["prompts"])) == 5 and len(pd.read_csv(out["videos"])) == 10
    for key in ("metrics", "heatmap", "tradeoff"):
        assert out[f"{key}_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = out[f"{key}_svg"].read_text()
        assert svg.lstrip().startswith("<?xml") and ">LAMP</text>" in svg and ">Per-frame T2I</text>" in svg
    assert ">45.50</text>" in out["heatmap_svg"].read_text()  # SVG text stays editable text
    assert not list((tmp_path / "out").rglob(".*"))  # no temporary files left


def test_a_metric_of_some_videos_is_their_mean_with_how_many_were_kept():
    """VBench's temporal flickering is NaN on the videos its static filter drops: a method's value
    is the mean over the videos kept (not the mean of prompt means), the tables say how many were
    kept, and a method with none kept has no number and says so."""
    videos = videos_table({"lamp": [10.0, 20.0, 30.0], "ours_latents": [10.0, 20.0, 30.0]}, seeds=(0, 1, 2))
    kept = {("lamp", "p0"): [90.0, 93.0, np.nan], ("lamp", "p1"): [99.0, np.nan, np.nan],
            ("lamp", "p2"): [96.0, 95.0, 94.0]}
    videos["temporal_flickering"] = [kept.get((row.method, row.prompt_id), [np.nan] * 3)[row.seed]
                                     for row in videos.itertuples()]
    prompts = per_prompt(videos)
    lamp = prompts[prompts["method"] == "lamp"].sort_values("prompt_id")
    assert list(lamp["temporal_flickering_kept"]) == [2, 1, 3]
    table = comparison_table(videos, ["lamp", "ours_latents"], 500, 0).set_index("method")
    assert table.loc["lamp", "temporal_flickering"] == pytest.approx(np.mean([90, 93, 99, 96, 95, 94]))
    assert table.loc["lamp", "temporal_flickering"] != pytest.approx(np.mean([91.5, 99.0, 95.0]))
    assert table.loc["lamp", "temporal_flickering_kept"] == 6 and table.loc["ours_latents", "temporal_flickering_kept"] == 0
    assert math.isnan(table.loc["ours_latents", "temporal_flickering"])
    low, high = table.loc["lamp", ["temporal_flickering_ci_low", "temporal_flickering_ci_high"]]
    assert 90 <= low < table.loc["lamp", "temporal_flickering"] < high <= 99
    markdown = markdown_table(table.reset_index())
    assert "Temporal flickering (static videos) ↑" in markdown
    assert f"{table.loc['lamp', 'temporal_flickering']:.2f} [{low:.2f}, {high:.2f}] (6 of 9 kept)" in markdown
    assert "| n/a (0 of 9 kept) |" in markdown
    assert "(6/9)" in latex_table(table.reset_index())
