"""The metric table: every metric of the study declared once, read by the evaluation
(:mod:`.evaluate`), the tables (:mod:`t2v_core.aggregate`), the figures (:mod:`t2v_core.plots`)
and the report's captions.

A metric is computed by an :class:`Evaluator`, which extracts features from the videos of one
prompt once (the CLIP evaluator: frame and prompt embeddings) and hands them to each of its
metrics' ``compute``. Plugins add evaluators and metrics with :func:`register_evaluator` and
:func:`register_metric`; the order of registration is the order of the table's columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..plugins import Registry
from . import clip, flow, vbench


@dataclass(frozen=True)
class Metric:
    name: str
    heading: str
    #: "↑" higher is better, "↓" lower is better, "→1" nearer 1 is better.
    arrow: str
    #: "video": ``compute(features of one video)``, averaged over a prompt's seeds;
    #: "prompt": ``compute([features of every seed's video])``, one value per prompt;
    #: "motion": ``compute({prompt_id: [features of every seed's video]})`` over the prompts of
    #: one motion, one value per prompt ({prompt_id: value}).
    per: str
    evaluator: str
    #: None for a metric that is one of its ``readings``, chosen by the config (computed by them).
    compute: Callable[[Any], Any] | None
    #: One sentence for the report: what the number is.
    description: str
    unit: str = ""
    #: The poster reports it: the table puts the poster's number beside ours and the figures draw it.
    poster: bool = False
    #: The tables that show it: "comparison" (one row per method), "motions" (per method x
    #: motion); () = the per-video CSV only (a diagnostic).
    tables: tuple[str, ...] = ("comparison", "motions")
    #: For a quantity with several readings (the poster's undefined diversity): the metrics it
    #: can be, the first the default; the config's ``evaluation.<name>`` chooses one.
    readings: tuple[str, ...] = ()
    #: The name in the config's ``evaluation.metrics`` that turns it on ("" = always computed).
    switch: str = ""
    #: For a metric computed on some videos only (VBench's temporal flickering: the static ones),
    #: which ones, for the tables' captions; ``compute`` gives NaN for the others. Its summary is
    #: the mean over the videos kept (as VBench's), shown with how many were kept.
    computed_on: str = ""

    def __post_init__(self):
        if self.per not in ("video", "prompt", "motion"):
            raise ValueError(f"metric {self.name}: per must be 'video', 'prompt' or 'motion', got {self.per!r}")
        if (self.compute is None) == (not self.readings):
            raise ValueError(f"metric {self.name}: give either compute or readings")
        if self.arrow not in LATEX_ARROWS:
            raise ValueError(f"metric {self.name}: arrow must be one of {list(LATEX_ARROWS)}")

    @property
    def column(self) -> str:
        """Its column in the per-video CSV (a per-prompt value is repeated on every seed's row)."""
        return self.name if self.per == "video" else f"prompt_{self.name}"

    @property
    def in_tables(self) -> bool:
        return bool(self.tables)

    @property
    def latex_arrow(self) -> str:
        return LATEX_ARROWS[self.arrow]

    @property
    def lower_is_better(self) -> bool:
        return self.arrow == "↓"


LATEX_ARROWS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$", "→1": r"$\to 1$"}


@dataclass(frozen=True)
class Evaluator:
    """Features of the videos of one prompt: ``features(prompt, {seed: uint8 frames}, models,
    device=..., batch_size=...) -> {seed: features}``, ``models`` being what :attr:`load` gave
    (by default the prepared folders, kind -> path); a function that also takes ``fps`` (the
    videos' frame rate) or ``metrics`` (the names of its metrics being computed) gets them."""

    name: str
    features: Callable[..., dict]
    #: Prepared models it loads (folders of prepare_models): inputs of the evaluate jobs.
    models: tuple[str, ...] = ()
    #: ``load(model_dirs, device, batch_size) -> models``: the models loaded once per evaluate
    #: job, for every prompt's ``features``; None = ``features`` gets the folders.
    load: Callable[..., dict] | None = None
    #: Whether it runs for a (validated) config; the CLIP evaluator always does.
    applies: Callable[[dict], bool] = lambda config: True
    #: One sentence for the report, when it runs: what it scores and with what.
    description: str = ""


EVALUATOR_REGISTRY = Registry("evaluator")
METRIC_REGISTRY = Registry("metric")


def register_evaluator(evaluator: Evaluator) -> None:
    EVALUATOR_REGISTRY.register(evaluator)


def register_metric(metric: Metric) -> None:
    if metric.evaluator not in [evaluator.name for evaluator in EVALUATOR_REGISTRY.registered()]:
        raise ValueError(f"metric {metric.name}: register its evaluator {metric.evaluator!r} first")
    METRIC_REGISTRY.register(metric)


def metrics(evaluator: str | None = None) -> list[Metric]:
    """Every registered metric (of one evaluator), in registration order."""
    return [m for m in METRIC_REGISTRY.items() if evaluator is None or m.evaluator == evaluator]


def table_metrics(columns=None, table: str | None = None) -> list[Metric]:
    """The metrics shown in the tables (in ``table``, "comparison" or "motions"): all of them, or
    those whose column is in ``columns``."""
    return [m for m in metrics() if m.in_tables and (table is None or table in m.tables)
            and (columns is None or m.column in columns)]


def chosen_readings(evaluation: dict) -> dict[str, str]:
    """For each metric with readings, the one the config chooses (``evaluation.<name>``, the
    reading's name without the ``<name>_`` prefix) or its default."""
    chosen = {}
    for metric in metrics():
        if metric.readings:
            choice = evaluation.get(metric.name)
            chosen[metric.name] = f"{metric.name}_{choice}" if choice else metric.readings[0]
            if chosen[metric.name] not in metric.readings:
                raise ValueError(f"evaluation.{metric.name}: {choice!r} is not one of "
                                 f"{[r.removeprefix(metric.name + '_') for r in metric.readings]}")
    return chosen


def poster_metrics() -> list[Metric]:
    return [m for m in metrics() if m.poster]


def get_metric(name: str) -> Metric:
    return METRIC_REGISTRY.get(name)


def get_evaluator(name: str) -> Evaluator:
    return EVALUATOR_REGISTRY.get(name)


def evaluators_for(config: dict) -> list[str]:
    """The evaluators that run for ``config``, in registration order."""
    return [evaluator.name for evaluator in EVALUATOR_REGISTRY.items() if evaluator.applies(config)]


def metric_switches() -> list[str]:
    """The names ``evaluation.metrics`` can list (the schema's enum), in registration order."""
    return list(dict.fromkeys(m.switch for m in metrics() if m.switch))


def switched_on(metric: Metric, chosen=()) -> bool:
    """Whether ``metric`` is computed when ``evaluation.metrics`` is ``chosen``: a metric
    without a switch always is."""
    return not metric.switch or metric.switch in chosen


def left_out(chosen) -> list[str]:
    """For a report's captions: the table metrics that ``evaluation.metrics`` (``chosen``) does not
    switch on, each with the models it would need (the reason a world without them leaves it out)."""
    lines = []
    for switch in [s for s in metric_switches() if s not in chosen]:
        for metric in [m for m in metrics() if m.switch == switch and m.in_tables]:
            models = get_evaluator(metric.evaluator).models
            needs = ", ".join(f"models.{kind}" for kind in models) if models else "no model"
            lines.append(f"{metric.heading} (evaluation.metrics: {switch}; needs {needs})")
    return lines


def _any_switched_on(evaluator: str):
    """``applies`` of an evaluator that runs only for its switched-on metrics."""
    return lambda config: any(switched_on(m, config["evaluation"]["metrics"]) for m in metrics(evaluator))


register_evaluator(Evaluator(
    "clip", clip.load_clip_features, models=("clip",), load=clip.load_embedder,
    description="CLIP cosine similarities x 100 (alignment, consistency, diversity)",
))
register_metric(Metric(
    "alignment", "Alignment", "↑", "video", "clip", lambda video: clip.alignment(video.frames, video.text),
    "a video's alignment is the mean over its frames of cos(frame, prompt)", unit="CLIP cosine x 100",
    poster=True,
))
register_metric(Metric(
    "consistency", "Consistency", "↑", "video", "clip", lambda video: clip.consistency(video.frames),
    "its consistency the mean over consecutive frame pairs of cos(frame t, frame t+1)", unit="CLIP cosine x 100",
    poster=True,
))
register_metric(Metric(
    "diversity", "Diversity", "↓", "prompt", "clip", None,
    "diversity is the reading that evaluation.diversity chooses (below)", unit="CLIP cosine x 100", poster=True,
    readings=("diversity_prompts", "diversity_seeds", "diversity_frames"), tables=("comparison",),
))
register_metric(Metric(
    "diversity_prompts", "Diversity across prompts", "↓", "motion", "clip",
    lambda prompts: clip.diversity_across_prompts({p: [v.frames for v in videos] for p, videos in prompts.items()}),
    "diversity across prompts is one value per prompt: the mean similarity of its videos to the videos of the "
    "other prompts of its motion, each embedded as the mean of its frame embeddings", unit="CLIP cosine x 100",
    tables=("motions",),
))
register_metric(Metric(
    "diversity_seeds", "Diversity across seeds", "↓", "prompt", "clip",
    lambda videos: clip.diversity([v.frames for v in videos]),
    "diversity across seeds is one value per prompt: the mean pairwise similarity of its seeds' videos, each "
    "embedded as the mean of its frame embeddings", unit="CLIP cosine x 100", tables=("motions",),
))
register_metric(Metric(
    "diversity_frames", "Diversity frame by frame", "↓", "prompt", "clip",
    lambda videos: clip.diversity_frames([v.frames for v in videos]),
    "diversity frame by frame is one value per prompt: the mean over pairs of its seeds' videos and over frame "
    "indices of cos(frame f of one, frame f of the other)", unit="CLIP cosine x 100", tables=("motions",),
))

register_evaluator(Evaluator(
    "clip_patch_tokens", clip.load_clip_patch_tokens, models=("clip",), load=clip.load_embedder, applies=_any_switched_on("clip_patch_tokens"),
    description="the CLIP image tower's patch tokens of the frames (subject consistency where there is no DINO)",
))
register_metric(Metric(
    "subject_consistency_clip", "Subject consistency (CLIP patch tokens)", "↑", "video", "clip_patch_tokens",
    vbench.subject_consistency,
    "subject consistency on CLIP patch tokens is VBench's subject consistency (below) on the CLIP image tower's "
    "patch tokens of each frame, flattened, in place of DINO's features (the stand-in where there is no DINO: "
    "unlike CLIP's pooled embedding, which hardly changes when the subject moves or jumps, the tokens keep where "
    "it is)", unit="x 100", switch="subject_consistency_clip",
))

# VBench's dimensions (Vchitect/VBench) that fit the study, computed on the videos VBench computes
# them on; t2v_core/metrics/vbench.py and flow.py have the formulas.
register_evaluator(Evaluator(
    "frames", lambda prompt, videos, models, device="cpu", batch_size=32: dict(sorted(videos.items())),
    applies=_any_switched_on("frames"), description="the frames themselves (no model)",
))
register_metric(Metric(
    "frame_steadiness", "Frame steadiness (all videos)", "↑", "video", "frames", vbench.temporal_flickering,
    "frame steadiness is VBench's temporal-flickering formula on every video, not VBench's dimension (which "
    "scores static videos only): 100 x (255 - the mean absolute difference of consecutive frames) / 255; on "
    "moving videos it mostly measures how little they move", unit="x 100", switch="frame_steadiness",
))
register_evaluator(Evaluator(
    "dino", vbench.dino_features, models=("dino",), load=vbench.load_dino_model, applies=_any_switched_on("dino"),
    description="DINO ViT-B/16 features of the frames (VBench's subject consistency)",
))
register_metric(Metric(
    "subject_consistency_dino", "Subject consistency (DINO)", "↑", "video", "dino",
    vbench.subject_consistency,
    "subject consistency is VBench's, on every video: 100 x the mean over frames 2..F of (max(0, cos(frame, "
    "previous frame)) + max(0, cos(frame, first frame))) / 2 on DINO ViT-B/16 features of the frames resized "
    "to 224 on the shorter side", unit="x 100", switch="subject_consistency_dino",
))
register_evaluator(Evaluator(
    "raft", flow.raft_features, models=("raft",), load=flow.load_raft_model, applies=_any_switched_on("raft"),
    description="RAFT optical flow, 20 iterations, as VBench runs it (VBench's static filter and dynamic "
                "degree, Lai et al.'s warping error)",
))
register_metric(Metric(
    "temporal_flickering", "Temporal flickering (static videos)", "↑", "video", "raft", flow.flickering_if_static,
    "temporal flickering is VBench's, on the videos its static filter keeps (at most round(2 F / 16) consecutive "
    "pairs whose top-2% RAFT flow magnitudes average above 3 x min(H, W) / 256 pixels, and first and last frames "
    "within twice that count of the threshold, both ways): 100 x (255 - the mean absolute difference of "
    "consecutive frames) / 255, averaged over the videos kept, whose number is given beside it (none kept: n/a)",
    unit="x 100", switch="temporal_flickering", computed_on="static videos (VBench's static filter)",
))
register_metric(Metric(
    "static_video", "Static (VBench's filter)", "↑", "video", "raft", lambda f: float(flow.static(f)),
    "1 when VBench's static filter keeps the video", tables=(), switch="temporal_flickering",
))
register_metric(Metric(
    "warping_error", "Warping error", "↓", "video", "raft", lambda f: flow.warping_error(f["pair_warping"]),
    "warping error is Lai et al.'s (ECCV 2018), on every video: 1000 x the mean over consecutive pairs of the "
    "mean squared difference (RGB in [0, 1]) between a frame and the next one warped back by RAFT's forward flow, "
    "over the pixels a forward-backward check does not mark occluded", unit="x 1000", switch="warping_error",
))
register_metric(Metric(
    "dynamic_degree", "Dynamic degree %", "↑", "video", "raft",
    lambda f: 100.0 * flow.is_dynamic(f["dynamic_top"], f["height"], f["width"]),
    "dynamic degree is VBench's, on every video: the share of videos whose RAFT flow moves (of the frames read, "
    "every round(fps / 8)-th, at least round(4 F / 16) pairs with a mean of their top 5% flow magnitudes above "
    "6 x min(H, W) / 256 pixels)", unit="%", switch="dynamic_degree",
))
register_metric(Metric(
    "flow_magnitude", "Flow magnitude", "↑", "video", "raft", lambda f: float(sum(f["mean"]) / len(f["mean"])),
    "flow magnitude is RAFT's mean flow between consecutive frames, in pixels per frame (0 = a still video)",
    unit="pixels per frame", switch="dynamic_degree",
))
register_evaluator(Evaluator(
    "aesthetic", vbench.aesthetic_features, models=("clip", "aesthetic"), load=vbench.load_aesthetic_models,
    applies=_any_switched_on("aesthetic"),
    description="LAION's aesthetic predictor on the CLIP image embeddings of the frames",
))
register_metric(Metric(
    "aesthetic_quality", "Aesthetic quality", "↑", "video", "aesthetic", vbench.aesthetic_quality,
    "aesthetic quality is VBench's, on every video: 100 x the mean over frames of LAION's aesthetic score / 10 (the "
    "linear head on CLIP ViT-L/14 image embeddings of the frames resized bicubic to 224 and centre-cut)", unit="x 100", switch="aesthetic_quality",
))
