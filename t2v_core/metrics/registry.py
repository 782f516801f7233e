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
from . import clip


@dataclass(frozen=True)
class Metric:
    name: str
    heading: str
    #: "↑" higher is better, "↓" lower is better, "→1" nearer 1 is better.
    arrow: str
    #: "video": ``compute(features of one video)``, averaged over a prompt's seeds;
    #: "prompt": ``compute([features of every seed's video])``, one value per prompt.
    per: str
    evaluator: str
    compute: Callable[[Any], float]
    #: One sentence for the report: what the number is.
    description: str
    unit: str = ""
    #: The poster reports it: the table puts the poster's number beside ours and the figures draw it.
    poster: bool = False
    #: False: kept in the per-video CSV only (a diagnostic), not in the tables.
    in_tables: bool = True

    def __post_init__(self):
        if self.per not in ("video", "prompt"):
            raise ValueError(f"metric {self.name}: per must be 'video' or 'prompt', got {self.per!r}")
        if self.arrow not in LATEX_ARROWS:
            raise ValueError(f"metric {self.name}: arrow must be one of {list(LATEX_ARROWS)}")

    @property
    def column(self) -> str:
        """Its column in the per-video CSV (a per-prompt value is repeated on every seed's row)."""
        return self.name if self.per == "video" else f"prompt_{self.name}"

    @property
    def latex_arrow(self) -> str:
        return LATEX_ARROWS[self.arrow]

    @property
    def lower_is_better(self) -> bool:
        return self.arrow == "↓"


LATEX_ARROWS = {"↑": r"$\uparrow$", "↓": r"$\downarrow$", "→1": r"$\to 1$"}


@dataclass(frozen=True)
class Evaluator:
    """Features of the videos of one prompt: ``features(prompt, {seed: uint8 frames},
    model_dirs, device=..., batch_size=...) -> {seed: features}``."""

    name: str
    features: Callable[..., dict]
    #: Prepared models it loads (folders of prepare_models): inputs of the evaluate jobs.
    models: tuple[str, ...] = ()
    #: Whether it runs for a (validated) config; the CLIP evaluator always does.
    applies: Callable[[dict], bool] = lambda config: True
    #: One sentence for the report, when it runs: what it scores and with what.
    description: str = ""


EVALUATORS = Registry("evaluator")
METRICS = Registry("metric")


def register_evaluator(evaluator: Evaluator) -> None:
    EVALUATORS.register(evaluator)


def register_metric(metric: Metric) -> None:
    if metric.evaluator not in [evaluator.name for evaluator in EVALUATORS.registered()]:
        raise ValueError(f"metric {metric.name}: register its evaluator {metric.evaluator!r} first")
    METRICS.register(metric)


def metrics(evaluator: str | None = None) -> list[Metric]:
    """Every registered metric (of one evaluator), in registration order."""
    return [m for m in METRICS.items() if evaluator is None or m.evaluator == evaluator]


def table_metrics(columns=None) -> list[Metric]:
    """The metrics shown in the tables: all of them, or those whose column is in ``columns``."""
    return [m for m in metrics() if m.in_tables and (columns is None or m.column in columns)]


def poster_metrics() -> list[Metric]:
    return [m for m in metrics() if m.poster]


def get_evaluator(name: str) -> Evaluator:
    return EVALUATORS.get(name)


def evaluators_for(config: dict) -> list[str]:
    """The evaluators that run for ``config``, in registration order."""
    return [evaluator.name for evaluator in EVALUATORS.items() if evaluator.applies(config)]


register_evaluator(Evaluator(
    "clip", clip.load_clip_features, models=("clip",),
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
    "diversity", "Diversity", "↓", "prompt", "clip", lambda videos: clip.diversity([v.frames for v in videos]),
    "diversity is one value per prompt: the mean pairwise similarity of its seeds' videos, each embedded as "
    "the mean of its frame embeddings (lower = more diverse)", unit="CLIP cosine x 100", poster=True,
))
