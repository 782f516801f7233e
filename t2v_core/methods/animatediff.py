"""AnimateDiff (Guo et al., ICLR 2024): a pretrained motion adapter (diffusers' ``MotionAdapter``)
added to the base text-to-image model and sampled with diffusers' ``AnimateDiffPipeline``; and
AnimateDiff + MotionLoRA: a LoRA on the motion modules' attention projections fine-tuned per
motion on the few-shot clips (the base UNet and the motion adapter frozen), saved in the
format that ``AnimateDiffPipeline.load_lora_weights`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import properties
from .base import Method, Training

#: The modules that get MotionLoRA: the query, key, value and output projections of the
#: motion modules' (temporal) attention, as AnimateDiff's MotionLoRA; the spatial layers none.
MOTION_LORA_TARGETS = r".*motion_modules\.\d+\.transformer_blocks\.\d+\.attn\d\.(to_q|to_k|to_v|to_out\.0)"
#: The adapter name of the LoRA in a sampling pipeline.
LORA_NAME = "motion_lora"


def motion_unet(base_unet, motion_adapter_dir, device="cpu"):
    """A new ``UNetMotionModel``: a copy of ``base_unet`` with the motion adapter's modules (the
    base UNet itself is not changed)."""
    from diffusers import MotionAdapter, UNetMotionModel

    motion_adapter = MotionAdapter.from_pretrained(motion_adapter_dir)
    return UNetMotionModel.from_unet2d(base_unet, motion_adapter).to(device)


def add_motion_lora(unet, rank: int) -> None:
    """A frozen ``unet`` gets a trainable LoRA of ``rank`` on :data:`MOTION_LORA_TARGETS`.

    lora_alpha = rank: the LoRA's update is added at scale 1, as AnimateDiff's MotionLoRA
    (W + up @ down, no division by the rank), and as load_lora_weights reads it back."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=MOTION_LORA_TARGETS))


def noise_schedule(scheduler, beta_schedule: str):
    """``scheduler``'s class and settings with the betas of ``beta_schedule`` (AnimateDiff trains
    and samples with "linear"; Stable Diffusion's own is "scaled_linear")."""
    return type(scheduler).from_config(scheduler.config, beta_schedule=beta_schedule)


@dataclass(frozen=True)
class MotionLoraTraining(Training):
    """MotionLoRA: the diffusion loss on all frames (no first frame given), only the LoRA trains.
    Its block ``finetune.motionlora`` has its own steps, learning rate, batch size, flips, frame
    stride and share of empty captions (AnimateDiff's training settings)."""

    def loop_settings(self, finetune: dict) -> dict:
        block = finetune[self.name]
        own = ("steps", "learning_rate", "batch_size", "random_flip", "frame_stride", "empty_caption_ratio")
        return {**finetune, **{key: block[key] for key in own}}

    def build(self, base_components, model_dirs, finetune, device):
        from ..training.trainable import Trainable

        block = finetune[self.name]
        # a new UNetMotionModel (a copy of the base UNet's weights): the LoRA goes on it
        unet = motion_unet(base_components["unet"], model_dirs["motion_adapter"], device)
        add_motion_lora(unet, block["rank"])
        unet.train()

        def denoiser(noisy, timesteps, texts):
            # UNetMotionModel takes one caption embedding per frame, as AnimateDiffPipeline gives it
            return unet(noisy, timesteps, texts.repeat_interleave(noisy.shape[2], dim=0)).sample

        return Trainable.one_group(unet, denoiser, block["learning_rate"], first_frame_given=False,
                                   scheduler=noise_schedule(base_components["scheduler"], block["beta_schedule"]),
                                   enable_gradient_checkpointing=unet.enable_gradient_checkpointing)

    def save(self, trained, out_dir, dtype, info):
        from diffusers import AnimateDiffPipeline
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        from ..training.loop import save_trained

        layers = {key: value.to(dtype) for key, value in
                  convert_state_dict_to_diffusers(get_peft_model_state_dict(trained)).items()}
        save_trained(lambda folder: AnimateDiffPipeline.save_lora_weights(folder, unet_lora_layers=layers,
                                                                           safe_serialization=True), out_dir, info)


class AnimateDiff(Method):
    """Sampled with diffusers' ``AnimateDiffPipeline`` over the base components and the motion
    adapter (and the fine-tuned MotionLoRA, when the method has a training)."""

    def load(self, model_dirs, adapter_dir, device, dtype=None):
        from diffusers import AnimateDiffPipeline, MotionAdapter

        parts = super().load(model_dirs, adapter_dir, device, dtype)
        motion_adapter = MotionAdapter.from_pretrained(model_dirs["motion_adapter"], torch_dtype=parts["unet"].dtype)
        pipe = AnimateDiffPipeline(**parts, motion_adapter=motion_adapter).to(device)
        if self.training is not None:
            pipe.load_lora_weights(adapter_dir, adapter_name=LORA_NAME)
        pipe.set_progress_bar_config(desc=f"{self.name} denoising")
        return pipe

    def sample(self, loaded, prompt, generator, call, first_frame=None):
        from ..sampling import to_uint8

        loaded.scheduler = noise_schedule(loaded.scheduler, call.own.beta_schedule)
        if self.training is not None:
            loaded.set_adapters([LORA_NAME], [call.own.lora_scale])
        result = loaded(prompt=prompt, generator=generator, output_type="np",
                        **call.arguments("beta_schedule", "lora_scale"))
        return to_uint8(result.frames[0])


MOTIONLORA_TRAINING = MotionLoraTraining(
    "motionlora", "a LoRA on AnimateDiff's motion modules (MotionLoRA), plain diffusion loss on all frames",
    models=("base", "motion_adapter"), settings=properties("""\
rank:
  type: integer
  minimum: 1
  default: 64
  description: >-
    LoRA rank; 64 is the rank of the released MotionLoRA checkpoints (19M parameters,
    74 MB, in AnimateDiff's README). Its update is added at scale 1 (lora_alpha = rank),
    as AnimateDiff adds it.
learning_rate:
  type: number
  exclusiveMinimum: 0
  default: 1.0e-4
  description: AdamW learning rate (AnimateDiff's configs/training/v1/training.yaml), constant.
steps:
  type: integer
  minimum: 1
  default: 2000
  description: Optimisation steps per motion (the paper's 2,000 iterations).
batch_size:
  type: integer
  minimum: 1
  default: 4
  description: Clips per step (train_batch_size of AnimateDiff's training config).
random_flip:
  type: boolean
  default: false
  description: >-
    Random horizontal flip of training clips. Off, unlike AnimateDiff's dataset (its
    RandomHorizontalFlip flips whole clips): a flip turns "moves right" into "moves
    left", and the motions of this study have a direction.
frame_stride:
  type: integer
  minimum: 1
  default: 4
  description: >-
    A training window takes every frame_stride-th frame of its clip (sample_stride of
    AnimateDiff's training config). A clip shorter than the (num_frames - 1) x stride + 1
    frames this needs gives windows spread evenly over all its frames, as AnimateDiff's
    dataset does; the job's log names such clips.
empty_caption_ratio:
  type: number
  minimum: 0
  maximum: 1
  default: 0.1
  description: >-
    Share of training windows whose caption is left empty, which keeps the
    unconditional prediction that classifier-free guidance needs
    (cfg_random_null_text_ratio of AnimateDiff's training config).
beta_schedule: {$ref: "#/definitions/beta_schedule", default: linear}
"""))
#: sampling.animatediff (and, with the LoRA's scale, sampling.animatediff_motionlora).
ANIMATEDIFF_SAMPLING = properties("""\
guidance_scale: {$ref: "#/definitions/guidance_scale", default: 7.5}
beta_schedule: {$ref: "#/definitions/beta_schedule", default: linear}
""")
_ADAPTER_NOTE = ("the motion adapter (models.motion_adapter; guoyww/animatediff-motion-adapter-v1-5-2 in the paper "
                 "config) was trained with SD-1.5 and runs here on the study's base model (SD-1.4)")
ANIMATEDIFF = AnimateDiff(
    "animatediff", "AnimateDiff", "zero-shot: the base model plus a pretrained motion adapter (diffusers' pipeline)",
    models=("base", "motion_adapter"), deviation=f"AnimateDiff: {_ADAPTER_NOTE}", settings=ANIMATEDIFF_SAMPLING)
ANIMATEDIFF_MOTIONLORA = AnimateDiff(
    "animatediff_motionlora", "AnimateDiff + MotionLoRA",
    "AnimateDiff with a MotionLoRA fine-tuned per motion on the few-shot clips",
    models=("base", "motion_adapter"), training=MOTIONLORA_TRAINING,
    deviation="AnimateDiff + MotionLoRA: as AnimateDiff; MotionLoRA's training code was not released, its "
              "settings are the paper's (2,000 steps) and those of AnimateDiff's motion-module training",
    settings={**ANIMATEDIFF_SAMPLING, **properties("""\
lora_scale:
  type: number
  minimum: 0
  default: 1.0
  description: Scale of the MotionLoRA's update (AnimateDiff's inference configs use alpha 1.0).
""")})

DECLARED_METHODS = (ANIMATEDIFF, ANIMATEDIFF_MOTIONLORA)
