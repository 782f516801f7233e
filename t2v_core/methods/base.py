"""What a method of the study is: a row of the comparison table (:class:`Method`) and, where it
is fine-tuned, the fine-tuned model it samples from (:class:`Training`; one fine-tuned model
can serve several rows, as Ours' one model gives Ours (Noise) and Ours (Latents)).

Everything else derives from these declarations: the rules' jobs, inputs and wildcard
constraints, the table's labels and the poster's numbers, the report's notes. Heavy libraries
(torch, diffusers) are imported inside the methods, so that the workflow can read the
registry without them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

#: How a video method gives the first frame: "latents" = the prompt's first-frame image, VAE
#: encoded and kept fixed (the workflow prepares one per prompt); "noise" = denoised from noise
#: with the other frames; None = the method has no first-frame conditioning.
FIRST_FRAME_MODES = ("latents", "noise", None)


@dataclass(frozen=True)
class Training:
    """A fine-tuned model, one per motion, in ``finetune/<name>/<motion>/adapter``, with the
    settings block ``finetune.<name>`` (declared by :attr:`settings`).

    A subclass builds what it trains (:meth:`build`: the trainable module, its denoiser, its
    parameter groups at their learning rates, its loss) and saves it (:meth:`save`); the
    fine-tuning job (:func:`t2v_core.jobs.finetune.finetune_motion`) does the rest: the clips'
    latents, the loop, checkpoints, resuming. LAMP's temporal adapter is one
    (:class:`t2v_core.methods.lamp.AdapterTraining`)."""

    name: str
    description: str
    #: Whether the run reads the SAM foreground masks of the clips (a rule input, then).
    needs_masks: bool = False
    #: Prepared models the run reads (folders of prepare_models; rule inputs).
    models: tuple[str, ...] = ("base",)
    #: Its settings block ``finetune.<name>``: the schema's properties (t2v_core.settings).
    settings: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def loop_settings(self, finetune: dict) -> dict:
        """The settings of the loop (training.loop.train_denoiser): the common ones, one clip
        per step as LAMP's reference."""
        return {**finetune, "batch_size": 1}

    def build(self, base_components: dict, model_dirs: Mapping[str, Path], finetune: dict, device):
        """What this fine-tuning trains, a :class:`t2v_core.training.trainable.Trainable`, on
        ``base_components`` (which it must not change: it trains copies or wrappers).
        ``finetune`` holds the common settings and this training's block ``finetune[self.name]``;
        ``model_dirs`` the prepared folders of :attr:`models`."""
        raise NotImplementedError

    def save(self, trained, out_dir, dtype, info: dict) -> None:
        """Write the trained module (``Trainable.module``) to ``out_dir``, its weights in
        ``dtype``, with ``info`` (t2v_core.training.loop.save_trained writes both atomically)."""
        raise NotImplementedError


@dataclass(frozen=True)
class SamplingCall:
    """A sampling job's settings, resolved once from the config (:meth:`Method.resolve`): what
    every pipeline is called with, under the pipelines' argument names, and the method's own
    block ``sampling.<name>`` as typed settings (t2v_core.settings.settings_class)."""

    num_frames: int
    height: int
    width: int
    num_inference_steps: int
    own: Any

    def arguments(self, *leave_out: str) -> dict:
        """Every setting as a keyword argument (the shape, the steps, the method's own), but
        those in ``leave_out`` (settings that are not the pipeline's arguments)."""
        common = {"num_frames": self.num_frames, "height": self.height, "width": self.width,
                  "num_inference_steps": self.num_inference_steps}
        return {k: v for k, v in {**common, **self.own.arguments()}.items() if k not in leave_out}


@dataclass(frozen=True)
class Method:
    """One row of the comparison table: how its videos are sampled.

    A subclass implements :meth:`load` (the models, once per job) and :meth:`sample` (one
    video); the sampling job (:func:`t2v_core.jobs.sample.sample_motion`) writes every seed of
    every prompt of one motion as mp4 + GIF.
    Its settings are the block ``sampling.<name>`` of the config, declared by :attr:`settings`.
    """

    name: str
    label: str
    description: str
    #: The poster's numbers of this row, by metric name (empty: the poster has no such row).
    poster: Mapping[str, float] = field(default_factory=dict)
    #: Prepared models it loads (folders of prepare_models), passed to :meth:`load` by kind.
    models: tuple[str, ...] = ("base",)
    first_frame: str | None = None
    training: Training | None = None
    #: Where it departs from the paper it comes from, for the report ("" = nowhere).
    deviation: str = ""
    #: Another reading of a method where its paper is silent: not in the default ``methods``
    #: (config/variants.yaml adds every variant to a run).
    variant: bool = False
    #: Its settings block ``sampling.<name>``: the schema's properties (t2v_core.settings).
    settings: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if self.first_frame not in FIRST_FRAME_MODES:
            raise ValueError(f"method {self.name}: first_frame must be one of {FIRST_FRAME_MODES}")

    @property
    def needs_first_frame_image(self) -> bool:
        return self.first_frame == "latents"

    def check_config(self, config: dict) -> list[str]:
        """Problems of this method's settings beyond the schema's (one line each), when it is
        one of the config's methods."""
        return []

    def resolve(self, video: Mapping[str, Any], sampling: Mapping[str, Any]) -> SamplingCall:
        """The job's settings, typed: ``video`` (the config's block), ``sampling`` holding
        ``num_inference_steps`` and this method's block ``sampling[self.name]``."""
        from ..settings import typed

        return SamplingCall(video["num_frames"], video["height"], video["width"], sampling["num_inference_steps"],
                            typed(f"sampling.{self.name}", dict(self.settings), sampling[self.name]))

    def load(self, model_dirs: Mapping[str, Path], adapter_dir: Path | None, device, dtype=None) -> Any:
        """Everything :meth:`sample` needs, loaded once for all seeds of a job, in ``dtype``
        (default float32); by default the base model's components (a dict: unet, vae,
        text_encoder, tokenizer, DDIM scheduler)."""
        import torch

        from ..models.loading import load_base_components

        return load_base_components(model_dirs["base"], device=device, dtype=dtype or torch.float32)

    def sample(self, loaded: Any, prompt: str, generator, call: SamplingCall, first_frame=None):
        """One video, uint8 frames (F, H, W, 3), with the settings ``call`` (see :meth:`resolve`);
        ``first_frame`` is the image (uint8 (H, W, 3)) when :attr:`needs_first_frame_image`."""
        raise NotImplementedError

    def sample_batch(self, loaded: Any, prompt: str, generators: list, call: SamplingCall, first_frame=None) -> list:
        """Videos of one prompt, one per generator, each as :meth:`sample` gives it for that
        generator; by default one :meth:`sample` call each. Methods that can run the videos
        as one batch override it."""
        return [self.sample(loaded, prompt, g, call, first_frame) for g in generators]

    def compile(self, loaded: Any, options: dict) -> None:
        """Compile the denoiser of what :meth:`load` gave (``performance.compile``): our own
        pipelines compile their video UNet; diffusers' pipelines are left as they are."""
        if hasattr(loaded, "compile_options"):
            loaded.compile_options = options
        else:
            log.info("performance.compile: %s samples through a diffusers pipeline, left uncompiled", self.name)
