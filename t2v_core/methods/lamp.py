"""LAMP (Wu et al., CVPR 2024): few-shot tuning of temporal modules (:class:`TemporalAdapter`)
with first-frame conditioning, sampled with the first frame given, LAMP's shared noise and
AdaIN (:class:`t2v_core.pipeline.FirstFrameVideoPipeline`), then, as LAMP's inference script, every
frame's histogram matched to the first frame's (``sampling.<method>.histogram_matching``)."""

from __future__ import annotations

from ..settings import properties
from dataclasses import dataclass

from .base import Method, Training

#: finetune.<name>.init of LAMP's and Ours' temporal modules.
TEMPORAL_INIT = properties("""\
init:
  type: string
  enum: [reference, identity]
  default: reference
  description: >-
    reference = LAMP's init (temporal attention output bias left at PyTorch's
    default, so the untrained video model differs from the image model);
    identity = that bias zeroed too, so the untrained video model equals the image
    model frame by frame (first-frame attention aside).
""")
#: sampling.lamp (and, changed, Ours' modes).
VIDEO_SAMPLING = properties("""\
guidance_scale: {$ref: "#/definitions/guidance_scale", default: 12.5}
shared_noise_alpha:
  type: number
  minimum: 0
  maximum: 1
  default: 0.2
  description: Weight of frame 1's noise in every frame's initial noise.
adain:
  type: boolean
  default: true
  description: LAMP's AdaIN of the frames' latent statistics towards frames 1 and 2.
adain_late_fraction:
  type: number
  minimum: 0
  maximum: 1
  default: 0.62
  description: >-
    Fraction of the loop after which frame 2 is also matched to frame 1 (LAMP: step
    index 31 of 50).
histogram_matching:
  type: boolean
  default: true
  description: >-
    After sampling, match every frame's per-channel histogram to the first frame's
    in pixel space, as LAMP's inference script does (on for LAMP, as its reference;
    off for Ours, whose poster does not say).
""")


class AdapterMethod(Method):
    """A method that samples a fine-tuned temporal adapter (LAMP, and Ours in both modes)."""

    def load(self, model_dirs, adapter_dir, device, dtype=None):
        import torch

        from ..pipeline import FirstFrameVideoPipeline
        from ..video_unet import TemporalAdapter

        parts = super().load(model_dirs, adapter_dir, device, dtype)
        # stored in finetune.save_dtype; sampled in the models' dtype
        adapter = TemporalAdapter.from_pretrained(adapter_dir, torch_dtype=dtype or torch.float32).to(device).eval()
        pipe = FirstFrameVideoPipeline(**parts, adapter=adapter)
        pipe.set_progress_bar_config(desc=f"{self.name} denoising")
        return pipe

    def sample(self, loaded, prompt, generator, call, first_frame=None):
        return self.sample_batch(loaded, prompt, [generator], call, first_frame)[0]

    def sample_batch(self, loaded, prompt, generators, call, first_frame=None):
        from ..sampling import match_histograms_to_first_frame

        videos = loaded(prompt, first_frame=first_frame, generator=list(generators),
                        **call.arguments("histogram_matching")).frames
        return [match_histograms_to_first_frame(frames) if call.own.histogram_matching else frames
                for frames in videos]


@dataclass(frozen=True)
class AdapterTraining(Training):
    """LAMP's fine-tuning: a :class:`TemporalAdapter` (the block's ``init``) on a frozen UNet,
    first-frame conditioned, its trainable modules (LAMP's selection by name) in one group at
    ``finetune.learning_rate``. Ours' trainings are this one with a loss weighting, or a noise
    weighting, from the foreground masks."""

    #: The weighted loss divided by the mean weight (see training.loop.masked_diffusion_loss).
    normalised_loss: bool = False

    def loss_weighting(self, settings: dict):
        """Per-pixel loss weights from a clip window's masks (``settings``: the block
        ``finetune.<name>``), or None for the plain loss."""
        return None

    def noise_weighting(self, settings: dict):
        """A per-pixel factor of the training noise from a clip window's masks, or None: every
        latent pixel noised."""
        return None

    def build(self, base_components, model_dirs, finetune, device):
        from ..training.trainable import ParamGroup, Trainable
        from ..video_unet import TemporalAdapter, VideoUNet

        block = finetune[self.name]
        adapter = TemporalAdapter.from_unet(base_components["unet"], init=block["init"]).to(device)
        # the base UNet is wrapped, not changed (see VideoUNet)
        model = VideoUNet(base_components["unet"], adapter).to(device)
        adapter.requires_grad_(False)
        trained = dict(adapter.trainable_parameters())
        for parameter in trained.values():
            parameter.requires_grad_(True)
        adapter.train()

        def enable_gradient_checkpointing():
            model.unet.enable_gradient_checkpointing()
            model.unet.train()

        return Trainable(adapter, model, [ParamGroup("temporal", trained, finetune["learning_rate"])],
                         first_frame_given=True, loss_weighting=self.loss_weighting(block),
                         normalised=self.normalised_loss, noise_weighting=self.noise_weighting(block),
                         enable_gradient_checkpointing=enable_gradient_checkpointing)

    def save(self, trained, out_dir, dtype, info):
        from ..training.loop import save_trained

        save_trained(trained.to(dtype).save_pretrained, out_dir, info)


LAMP_TRAINING = AdapterTraining("lamp", "LAMP's temporal modules, first-frame conditioned, plain diffusion loss on frames 2..F",
                         settings=TEMPORAL_INIT)
LAMP = AdapterMethod(
    "lamp", "LAMP", "few-shot tuned temporal modules, first frame given (LAMP's reference recipe)",
    poster={"alignment": 29.01, "consistency": 98.12, "diversity": 86.51}, first_frame="latents", training=LAMP_TRAINING,
    settings=VIDEO_SAMPLING)

DECLARED_METHODS = (LAMP,)
