"""What a fine-tuning trains (:class:`Trainable`): built by a method's
:class:`~t2v_core.methods.base.Training`, run by :func:`t2v_core.training.loop.train_denoiser`.
Its parameters come in groups, each at its own learning rate (a MotionDirector-style method
trains spatial and temporal LoRAs at two)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from . import TrainingError

#: A method's loss weighting: the foreground masks (1, F, h, w) of a clip's training window ->
#: per-pixel weights of the same shape.
LossWeighting = Callable[[torch.Tensor], torch.Tensor]


#: A video denoiser: (noisy latents (B, C, F, h, w), timesteps (B,), caption embeddings
#: (B, 77, D)) -> predicted noise (B, C, F, h, w).
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ParamGroup:
    """Parameters trained at one learning rate (one AdamW parameter group), by name."""

    name: str
    parameters: dict[str, torch.nn.Parameter]
    learning_rate: float


@dataclass
class Trainable:
    """What a fine-tuning trains, as its :class:`~t2v_core.methods.base.Training` builds it:
    the loop (:func:`train_denoiser`) needs nothing else from the method."""

    #: What is saved: holds every parameter of ``groups``.
    module: torch.nn.Module
    denoiser: Denoiser
    #: The trained parameters, each group at its own learning rate (their names unique).
    groups: list[ParamGroup]
    #: LAMP's first-frame conditioning: the first frame given clean, no loss on it; False: every
    #: frame noised and scored (AnimateDiff).
    first_frame_given: bool = True
    #: A clip window's masks -> loss weights (``data.masks`` must then be set), divided by
    #: their mean when ``normalised``.
    loss_weighting: LossWeighting | None = None
    normalised: bool = False
    #: A clip window's masks -> a factor of the added noise (1 = noised as usual, 0 = left
    #: clean, and a zero noise the target there).
    noise_weighting: LossWeighting | None = None
    #: The training noise schedule; None = the base model's.
    scheduler: Any = None
    #: Turns gradient checkpointing on (``finetune.gradient_checkpointing``); None = not available.
    enable_gradient_checkpointing: Callable[[], None] | None = None

    @classmethod
    def one_group(cls, module: torch.nn.Module, denoiser: Denoiser, learning_rate: float, **fields) -> "Trainable":
        """Every parameter of ``module`` that requires a gradient, at one learning rate."""
        parameters = {name: p for name, p in module.named_parameters() if p.requires_grad}
        return cls(module, denoiser, [ParamGroup("all", parameters, learning_rate)], **fields)

    def parameters(self) -> dict[str, torch.nn.Parameter]:
        every = {}
        for group in self.groups:
            twice = set(every) & set(group.parameters)
            if twice:
                raise TrainingError(f"parameter group {group.name!r}: {sorted(twice)[:3]} already in another group")
            every.update(group.parameters)
        return every
