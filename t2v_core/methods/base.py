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
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

#: ``finetune.save_dtype``: the precision a fine-tuned model is stored in (loaded as float32).
SAVE_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

#: How a video method gives the first frame: "latents" = the prompt's first-frame image, VAE
#: encoded and kept fixed (the workflow prepares one per prompt); "noise" = denoised from noise
#: with the other frames; None = the method has no first-frame conditioning.
FIRST_FRAME_MODES = ("latents", "noise", None)


@dataclass(frozen=True)
class Training:
    """A fine-tuned model, one per motion, in ``finetune/<name>/<motion>/adapter``, with the
    settings block ``finetune.<name>`` (declared by :attr:`settings`). This base class is LAMP's: a :class:`TemporalAdapter`
    (the block's ``init``) trained first-frame conditioned with the common settings."""

    name: str
    description: str
    #: Whether the run reads the SAM foreground masks of the clips (a rule input, then).
    needs_masks: bool = False
    #: Prepared models the run reads (folders of prepare_models; rule inputs).
    models: tuple[str, ...] = ("base",)

    #: The weighted loss divided by the mean weight (see training.loop.masked_diffusion_loss).
    normalised_loss: bool = False
    #: Its settings block ``finetune.<name>``: the schema's properties (t2v_core.settings).
    settings: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def loss_weighting(self, settings: dict):
        """Per-pixel loss weights from a clip window's masks (see training.loop.LossWeighting),
        or None for the plain loss."""
        return None

    def noise_weighting(self, settings: dict):
        """A per-pixel factor of the training noise from a clip window's masks, or None: every
        latent pixel noised."""
        return None

    def loop_settings(self, finetune: dict) -> dict:
        """The settings of the loop (training.loop.train_denoiser): the common ones, one clip
        per step as LAMP's reference."""
        return {**finetune, "batch_size": 1}

    def finetune(self, base_components: dict, clip_paths: list, prompt: str | list[str], out_dir,
                 checkpoint_root, video: dict, finetune: dict, mask_paths: list | None = None,
                 model_dirs: Mapping[str, Path] | None = None, device="cpu", stop_after: int | None = None,
                 keep_checkpoints: bool = False) -> list[float]:
        """Fine-tune on one motion's clips; save the fine-tuned model to ``out_dir`` (in
        ``finetune["save_dtype"]``), then remove the run's checkpoints unless ``keep_checkpoints``.

        ``finetune`` holds the common settings and this training's block ``finetune[self.name]``;
        ``prompt`` is the caption of every clip or one caption per clip; ``model_dirs`` the
        prepared folders of :attr:`models` besides the base. Returns the per-step losses.
        ``stop_after`` ends the run early (after that many steps in total) without writing
        ``out_dir``, as a kill would; used to test resuming.
        """
        import torch

        from ..training import TrainingError
        from ..training.checkpoints import Checkpoints, run_fingerprint
        from ..training.data import prepare_training_set

        if self.needs_masks and mask_paths is None:
            raise TrainingError(f"{self.name!r} needs the foreground masks of the clips")
        masks = mask_paths if self.needs_masks else None
        data = prepare_training_set(base_components, clip_paths, prompt, video, masks, device)
        torch.manual_seed(finetune["seed"])
        fingerprint = run_fingerprint([*clip_paths, *(masks or [])], data.prompts, video, finetune, self.name)
        trained, losses, complete = self.train(base_components, dict(model_dirs or {}), data, video, finetune,
                                               Checkpoints(checkpoint_root, fingerprint), device, stop_after)
        if complete:
            dtype = getattr(torch, SAVE_DTYPES[finetune["save_dtype"]])
            self.save(trained, out_dir, dtype, {
                "method": self.name, "prompt": prompt, "steps": self.loop_settings(finetune)["steps"],
                "save_dtype": finetune["save_dtype"], "clips": [str(p) for p in clip_paths],
                "final_loss": losses[-1] if losses else math.nan})
            if not keep_checkpoints:
                # the model is written: its checkpoints (trained parameters and AdamW's two
                # moments, ~3x the model) are only needed to continue training
                shutil.rmtree(checkpoint_root, ignore_errors=True)
        return losses

    def train(self, base_components: dict, model_dirs: dict, data, video: dict, finetune: dict, checkpoints,
              device, stop_after):
        """Build the fine-tuned model and run the loop: (model, losses, whether all steps are done)."""
        from ..training.loop import train_adapter
        from ..video_unet import TemporalAdapter

        adapter = TemporalAdapter.from_unet(base_components["unet"], init=finetune[self.name]["init"]).to(device)
        losses, complete = train_adapter(
            base_components["unet"], adapter, data, base_components["scheduler"], self.loop_settings(finetune),
            video["num_frames"], checkpoints, self.loss_weighting(finetune[self.name]), device=device,
            stop_after=stop_after, desc=f"finetune {self.name}", normalised=self.normalised_loss,
            noise_weighting=self.noise_weighting(finetune[self.name]),
        )
        return adapter, losses, complete

    def save(self, trained, out_dir, dtype, info: dict) -> None:
        """Write the fine-tuned model to ``out_dir``, its weights in ``dtype``."""
        from ..training.loop import save_adapter

        save_adapter(trained.to(dtype), out_dir, info)


@dataclass(frozen=True)
class Method:
    """One row of the comparison table: how its videos are sampled.

    A subclass implements :meth:`load` (the models, once per job) and :meth:`sample` (one
    video); :meth:`sample_videos` is the job: every seed of every prompt of one motion, written
    as mp4 + GIF.
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

    def load(self, model_dirs: Mapping[str, Path], adapter_dir: Path | None, device, dtype=None) -> Any:
        """Everything :meth:`sample` needs, loaded once for all seeds of a job, in ``dtype``
        (default float32); by default the base model's components (a dict: unet, vae,
        text_encoder, tokenizer, DDIM scheduler)."""
        import torch

        from ..models.loading import load_base_components

        return load_base_components(model_dirs["base"], device=device, dtype=dtype or torch.float32)

    def sample(self, loaded: Any, prompt: str, generator, video: dict, sampling: dict, first_frame=None):
        """One video, uint8 frames (F, H, W, 3). ``sampling`` holds ``num_inference_steps`` and
        this method's block ``sampling[self.name]``; ``first_frame`` is the image (uint8
        (H, W, 3)) when :attr:`needs_first_frame_image`."""
        raise NotImplementedError

    def sample_batch(self, loaded: Any, prompt: str, generators: list, video: dict, sampling: dict,
                     first_frame=None) -> list:
        """Videos of one prompt, one per generator, each as :meth:`sample` gives it for that
        generator; by default one :meth:`sample` call each. Methods that can run the videos
        as one batch override it."""
        return [self.sample(loaded, prompt, g, video, sampling, first_frame) for g in generators]

    def compile(self, loaded: Any, options: dict) -> None:
        """Compile the denoiser of what :meth:`load` gave (``performance.compile``): our own
        pipelines compile their video UNet; diffusers' pipelines are left as they are."""
        if hasattr(loaded, "compile_options"):
            loaded.compile_options = options
        else:
            log.info("performance.compile: %s samples through a diffusers pipeline, left uncompiled", self.name)

    def sample_videos(self, model_dirs: Mapping[str, Path], prompts: Mapping[str, str], seeds: list[int],
                      video: dict, sampling: dict, out_dir, adapter_dir=None,
                      first_frames: Mapping[str, str] | None = None, device="cpu",
                      performance: Mapping[str, Any] | None = None) -> None:
        """The job: every seed of every prompt of one motion (``prompts``: prompt_id -> text),
        the models loaded once; an mp4 and a GIF per video at ``prompts.sample_file(out_dir, ...)``.
        ``first_frames``: prompt_id -> first-frame image, when :attr:`needs_first_frame_image`.
        ``performance``: the config's block (precision, compile; default fp32 on CPUs, bf16 on
        GPUs, no compile); ``sampling["batch_seeds"]``: seeds sampled as one batch (default
        auto). ``out_dir`` gets its name when every video is written."""
        import time

        import torch
        from tqdm.auto import tqdm

        from ..atomic import atomic_dir
        from ..prompts import sample_file
        from ..runtime import compile_options, sampling_dtype, seed_batch_size
        from ..sampling import load_first_frame
        from ..video_io import write_gif, write_mp4

        performance = {"precision": "auto", "compile": "off", "compile_min_videos": 1, **(performance or {})}
        dtype = sampling_dtype(performance["precision"], device)
        loaded = self.load(model_dirs, adapter_dir, device, dtype)
        options = compile_options(performance["compile"], device, len(prompts) * len(seeds),
                                  performance["compile_min_videos"])
        if options is not None:
            self.compile(loaded, options)
        batch = seed_batch_size(sampling.get("batch_seeds", "auto"), device, len(seeds))
        log.info("%s: %d prompts x %d seeds in %s, %d seeds per batch, %s", self.name, len(prompts), len(seeds),
                 str(dtype).removeprefix("torch."), batch, "compiled" if options is not None else "not compiled")
        with atomic_dir(out_dir) as work, tqdm(total=len(prompts) * len(seeds), desc=self.name) as bar:
            for pid, prompt in prompts.items():
                first_frame = None
                if self.needs_first_frame_image:
                    first_frame = load_first_frame(first_frames[pid], video["height"], video["width"])
                pending = list(seeds)
                while pending:
                    chunk, start = pending[:batch], time.perf_counter()
                    generators = [torch.Generator(device).manual_seed(seed) for seed in chunk]
                    try:
                        videos = self.sample_batch(loaded, prompt, generators, video, sampling, first_frame)
                    except torch.OutOfMemoryError:
                        if batch == 1:
                            raise
                        batch //= 2
                        log.warning("%s: out of memory with %d seeds per batch; now %d", self.name, len(chunk), batch)
                        torch.cuda.empty_cache()
                        continue
                    for seed, frames in zip(chunk, videos):
                        write_mp4(sample_file(work, pid, seed, "mp4"), frames, fps=video["fps"])
                        write_gif(sample_file(work, pid, seed, "gif"), frames, fps=video["fps"])
                    # the first batch's time includes the compile, when there is one
                    log.info("%s %r seeds %s: %.1f s", self.name, prompt, chunk, time.perf_counter() - start)
                    bar.update(len(chunk))
                    pending = pending[len(chunk):]
