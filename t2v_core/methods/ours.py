"""The poster's method: LAMP's architecture and first-frame conditioning, fine-tuned with a loss
weighted by off-the-shelf (SAM) foreground masks; one fine-tuned model, sampled in two modes
that are the poster's two rows."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Training
from .lamp import AdapterMethod


@dataclass(frozen=True)
class MaskWeightedTraining(Training):
    """Per latent pixel ``background + (foreground - background) * mask`` (the weights are
    ``finetune.<name>.foreground_weight`` / ``background_weight``; not normalised)."""

    def loss_weighting(self, settings: dict):
        background, foreground = settings["background_weight"], settings["foreground_weight"]
        return lambda masks: background + (foreground - background) * masks


OURS_TRAINING = MaskWeightedTraining(
    "ours", "LAMP's temporal modules with the diffusion loss weighted by SAM foreground masks", needs_masks=True)


def ours_mode(name: str, label: str, first_frame: str, description: str, poster: dict, deviation: str = ""):
    """One of the two sampling modes of Ours' one fine-tuned model."""
    return AdapterMethod(name=name, label=label, description=description, poster=poster, first_frame=first_frame,
                         training=OURS_TRAINING, deviation=deviation)


OURS_NOISE = ours_mode(
    "ours_noise", "Ours (Noise)", "noise", "the mask-weighted model, every frame (the first included) from noise",
    {"alignment": 23.37, "consistency": 94.91, "diversity": 96.66},
    deviation='Ours (Noise) is read as "every frame from noise, no first frame given"; the loss weights '
              "are this pipeline's choice (the poster gives none)")
OURS_LATENTS = ours_mode(
    "ours_latents", "Ours (Latents)", "latents", "the mask-weighted model, first frame given as clean latents (as LAMP)",
    {"alignment": 29.28, "consistency": 97.79, "diversity": 86.64})

METHODS = (OURS_NOISE, OURS_LATENTS)
