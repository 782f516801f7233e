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
