"""The poster's method: LAMP's architecture and first-frame conditioning, fine-tuned with a loss
weighted by off-the-shelf (SAM) foreground masks; one fine-tuned model, sampled in two modes
that are the poster's two rows.

The poster's Method section is blank beyond "off-the-shelf foreground masks", so the default
reading (a 2:1 weighted loss, not normalised) has named variants, each a fine-tuned model of
its own sampled in both modes: the weighted loss normalised by the weights, a loss on the
foreground only, noise added to the foreground only; and Noise mode without AdaIN (towards a
first frame that is itself still noise)."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import changed, properties
from .base import Training
from .lamp import TEMPORAL_INIT, VIDEO_SAMPLING, AdapterMethod, AdapterTraining

#: finetune.<name> of the mask-weighted models (Ours and its normalised variant).
MASK_WEIGHTS = {**TEMPORAL_INIT, **properties("""\
foreground_weight:
  type: number
  minimum: 0
  default: 2.0
  description: Loss weight of latent pixels inside the SAM foreground mask.
background_weight:
  type: number
  minimum: 0
  default: 1.0
  description: Loss weight of the other latent pixels.
""")}
#: sampling.<mode> of Ours' modes: LAMP's, without its histogram matching (the poster does not say).
OURS_SAMPLING = changed(VIDEO_SAMPLING, histogram_matching={"default": False})


@dataclass(frozen=True)
class MaskWeightedTraining(AdapterTraining):
    """Per latent pixel ``background + (foreground - background) * mask`` (the weights are
    ``finetune.<name>.foreground_weight`` / ``background_weight``; not normalised)."""

    def loss_weighting(self, settings: dict):
        background, foreground = settings["background_weight"], settings["foreground_weight"]
        return lambda masks: background + (foreground - background) * masks


@dataclass(frozen=True)
class ForegroundLossTraining(AdapterTraining):
    """The diffusion loss on the foreground only: the mean squared error over the masks'
    latent pixels (the masks as weights, normalised)."""

    normalised_loss: bool = True

    def loss_weighting(self, settings: dict):
        return lambda masks: masks


@dataclass(frozen=True)
class ForegroundNoiseTraining(AdapterTraining):
    """Noise added to the foreground only: the background stays clean in the UNet's input and
    its target noise is 0; the plain loss on every pixel."""

    def noise_weighting(self, settings: dict):
        return lambda masks: masks


OURS_TRAINING = MaskWeightedTraining(
    "ours", "LAMP's temporal modules with the diffusion loss weighted by SAM foreground masks", needs_masks=True,
    settings=MASK_WEIGHTS)
OURS_NORMALISED = MaskWeightedTraining(
    "ours_normalised", "as ours, the weighted loss divided by the mean weight", needs_masks=True,
    normalised_loss=True, settings=MASK_WEIGHTS)
OURS_FG_LOSS = ForegroundLossTraining(
    "ours_fg_loss", "LAMP's temporal modules with the diffusion loss on the SAM foreground only", needs_masks=True,
    settings=TEMPORAL_INIT)
OURS_FG_NOISE = ForegroundNoiseTraining(
    "ours_fg_noised", "LAMP's temporal modules trained with noise added to the SAM foreground only",
    needs_masks=True, settings=TEMPORAL_INIT)


def ours_mode(name: str, label: str, first_frame: str, description: str, poster: dict, deviation: str = "",
              training: Training = OURS_TRAINING, variant: bool = False, settings: dict = OURS_SAMPLING):
    """One of the two sampling modes of one of Ours' fine-tuned models."""
    return AdapterMethod(name=name, label=label, description=description, poster=poster, first_frame=first_frame,
                         training=training, deviation=deviation, variant=variant, settings=settings)


OURS_NOISE = ours_mode(
    "ours_noise", "Ours (Noise)", "noise", "the mask-weighted model, every frame (the first included) from noise",
    {"alignment": 23.37, "consistency": 94.91, "diversity": 96.66},
    deviation='Ours (Noise) is read as "every frame from noise, no first frame given"; the loss weights '
              "are this pipeline's choice (the poster gives none)")
OURS_LATENTS = ours_mode(
    "ours_latents", "Ours (Latents)", "latents", "the mask-weighted model, first frame given as clean latents (as LAMP)",
    {"alignment": 29.28, "consistency": 97.79, "diversity": 86.64})

OURS_NOISE_NO_ADAIN = ours_mode(
    "ours_noise_no_adain", "Ours (Noise, no AdaIN)", "noise",
    "Ours (Noise) without LAMP's AdaIN (the first frame it pulls towards is itself still noise)", {}, variant=True,
    settings=changed(OURS_SAMPLING, adain={"default": False, "description": "LAMP's AdaIN (off in this variant)."}))

def variant_modes(training: Training, label: str) -> tuple[AdapterMethod, AdapterMethod]:
    """A variant's fine-tuned model sampled in both modes (Noise, Latents)."""
    return (
        ours_mode(f"{training.name}_noise", f"{label} (Noise)", "noise",
                  f"variant: {training.description}; every frame from noise", {}, training=training, variant=True),
        ours_mode(f"{training.name}_latents", f"{label} (Latents)", "latents",
                  f"variant: {training.description}; first frame given", {}, training=training, variant=True),
    )


VARIANTS = (*variant_modes(OURS_NORMALISED, "Ours normalised"), *variant_modes(OURS_FG_LOSS, "Ours fg loss"),
            *variant_modes(OURS_FG_NOISE, "Ours fg noised"))

DECLARED_METHODS = (OURS_NOISE, OURS_LATENTS, OURS_NOISE_NO_ADAIN, *VARIANTS)
