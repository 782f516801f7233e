"""The tiny SAM of tiny.py, trained from its random weights on the world's ground-truth masks.

Prompts as the project gives them (:mod:`t2v_core.masks`): a box around the subject, with
three proposals asked (``multimask_output=True``); some steps use a single foreground point
instead, as the automatic mask generator does. SAM's recipe for ambiguous prompts: only the
best of the three proposals gets the mask loss (BCE + dice), and the IoU head learns each
proposal's actual IoU. Saved as tiny.py saves SAM: safetensors + config.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..masks import box_of, mask_iou
from ..models.tiny import build_tiny_sam, save_tiny_sam
from ..atomic import atomic_dir
from .train_common import LossLog, finish_model_dir, folder_megabytes, seeded_generator, warmup_cosine
from .world import MOTIONS, motion_clips, sample_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamSettings:
    image_size: int = 64
    num_images: int = 2048
    clips_per_motion: int = 48
    clip_frames: int = 8
    held_out_clips_per_motion: int = 8
    steps: int = 800
    batch_size: int = 16
    learning_rate: float = 1e-3
    point_prompt_fraction: float = 0.3
    #: Box corners moved by up to this fraction of the box's size, as SAM's training does.
    box_jitter: float = 0.1
    log_every: int = 50


def frames_and_masks(settings: SamSettings, seed: int, clips_per_motion: int, with_images: bool):
    """uint8 frames (N, S, S, 3) and bool masks (N, S, S), frames without a subject left out."""
    frames, masks = [], []
    if with_images:
        images, image_masks, _ = sample_images(settings.num_images, settings.image_size, seed)
        frames.append(images), masks.append(image_masks)
    for index, motion in enumerate(MOTIONS):
        for _, clip, clip_masks in motion_clips(motion, clips_per_motion, settings.clip_frames, settings.image_size,
                                                seed + 1000 * (index + 1)):
            frames.append(clip), masks.append(clip_masks)
    frames, masks = np.concatenate(frames), np.concatenate(masks)
    keep = masks.reshape(len(masks), -1).sum(1) >= 4
    return frames[keep], masks[keep]


def sam_inputs(sam, frames: np.ndarray) -> torch.Tensor:
    """The image encoder's inputs, made exactly as ``SamPredictor.set_image`` makes them."""
    from segment_anything.utils.transforms import ResizeLongestSide

    resize = ResizeLongestSide(sam.image_encoder.img_size)
    resized = np.stack([resize.apply_image(frame) for frame in frames])
    return torch.from_numpy(resized).permute(0, 3, 1, 2).contiguous()


def random_prompt(mask: torch.Tensor, settings: SamSettings, generator, scale: float) -> dict:
    """A jittered box, or one foreground point, in the resized image's coordinates."""
    if torch.rand((), generator=generator) < settings.point_prompt_fraction:
        ys, xs = torch.nonzero(mask, as_tuple=True)
        pick = torch.randint(len(xs), (), generator=generator)
        point = torch.stack([xs[pick], ys[pick]]).float()[None, None] + 0.5
        return {"points": (point * scale, torch.ones(1, 1, dtype=torch.int)), "boxes": None}
    box = torch.from_numpy(box_of(mask.numpy(), min_area=0.0, pad=0.0)).float()
    size = torch.stack([box[2] - box[0], box[3] - box[1], box[2] - box[0], box[3] - box[1]]) + 1
    box = box + settings.box_jitter * size * (2 * torch.rand(4, generator=generator) - 1)
    return {"points": None, "boxes": (box * scale)[None]}


def proposal_losses(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + dice of each of the (3, H, W) proposal logits against the (H, W) target."""
    target = target.float().expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean((1, 2))
    probability = logits.sigmoid()
    dice = 1 - (2 * (probability * target).sum((1, 2)) + 1) / (probability.sum((1, 2)) + target.sum((1, 2)) + 1)
    return bce + dice


def sam_loss(sam, inputs: torch.Tensor, masks: torch.Tensor, settings: SamSettings, generator) -> torch.Tensor:
    size = masks.shape[-1]
    scale = sam.image_encoder.img_size / size
    embeddings = sam.image_encoder(sam.preprocess(inputs.float()))
    dense_pe = sam.prompt_encoder.get_dense_pe()
    total = 0.0
    # One image at a time: the mask decoder pairs every prompt with every image of a batch.
    for embedding, mask in zip(embeddings, masks):
        prompt = random_prompt(mask, settings, generator, scale)
        sparse, dense = sam.prompt_encoder(points=prompt["points"], boxes=prompt["boxes"], masks=None)
        low_res, predicted_iou = sam.mask_decoder(
            image_embeddings=embedding[None], image_pe=dense_pe, sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, multimask_output=True,
        )
        logits = sam.postprocess_masks(low_res, (sam.image_encoder.img_size,) * 2, (size, size))[0]
        losses = proposal_losses(logits, mask)
        with torch.no_grad():
            actual_iou = torch.from_numpy(mask_iou((logits > 0).numpy(), mask.numpy())).float()
        total = total + losses.min() + F.mse_loss(predicted_iou[0], actual_iou)
    return total / len(masks)


def train_sam(out_dir, seed: int = 0, settings: SamSettings = SamSettings()) -> dict:
    frames, masks = frames_and_masks(settings, seed, settings.clips_per_motion, with_images=True)
    held_out_frames, held_out_masks = frames_and_masks(settings, seed + 10_000, settings.held_out_clips_per_motion,
                                                       with_images=False)
    torch.manual_seed(seed)
    sam = build_tiny_sam()
    inputs, masks = sam_inputs(sam, frames), torch.from_numpy(masks)
    optimizer = torch.optim.AdamW(sam.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
    schedule = warmup_cosine(optimizer, settings.steps)
    generator = seeded_generator(seed)
    evaluation = torch.randperm(len(inputs), generator=seeded_generator(seed + 1))[:32]
    initial_eval_loss = evaluation_loss(sam, inputs[evaluation], masks[evaluation], settings, seed)
    losses = LossLog("sam", settings.steps, settings.log_every)
    sam.train()
    for _ in range(settings.steps):
        index = torch.randint(len(inputs), (settings.batch_size,), generator=generator)
        loss = sam_loss(sam, inputs[index], masks[index], settings, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sam.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.add(float(loss.detach()))
    sam.eval()
    metrics = {
        "parameters": sum(p.numel() for p in sam.parameters()), "training_frames": len(frames),
        "eval_loss_before": initial_eval_loss,
        "eval_loss_after": evaluation_loss(sam, inputs[evaluation], masks[evaluation], settings, seed),
        "settings": asdict(settings),
    }
    with atomic_dir(out_dir) as work:
        save_tiny_sam(sam, work)
        metrics["held_out_box_prompts"] = box_prompt_iou(work, held_out_frames, held_out_masks)
        metrics = finish_model_dir(work, "sam", seed, losses, metrics)
    metrics["megabytes"] = round(folder_megabytes(out_dir), 2)
    return metrics


@torch.no_grad()
def evaluation_loss(sam, inputs, masks, settings: SamSettings, seed: int) -> float:
    return float(sam_loss(sam, inputs, masks, settings, seeded_generator(seed + 2)))


def box_prompt_iou(sam_dir, frames: np.ndarray, masks: np.ndarray) -> dict:
    """Mean IoU on held-out frames, prompted through ``SamPredictor`` as masks.py prompts it (a
    5%-padded box, three proposals): the proposal chosen by SAM's own IoU score, the best one
    (as masks.py chooses by overlap), and the box itself as a mask for comparison."""
    from segment_anything import SamPredictor

    from ..models.loading import load_sam

    predictor = SamPredictor(load_sam(sam_dir))
    scored, best, box_only = [], [], []
    for frame, mask in zip(frames, masks):
        box = box_of(mask, min_area=0.0)
        predictor.set_image(frame)
        proposals, scores, _ = predictor.predict(box=box, multimask_output=True)
        ious = mask_iou(proposals, mask)
        scored.append(ious[int(np.argmax(scores))])
        best.append(ious.max())
        filled = np.zeros_like(mask)
        x0, y0, x1, y1 = np.round(box).astype(int)
        filled[y0:y1 + 1, x0:x1 + 1] = True
        box_only.append(mask_iou(filled[None], mask)[0])
    return {"frames": len(frames), "mean_iou_by_sam_score": float(np.mean(scored)),
            "mean_iou_best_proposal": float(np.mean(best)), "mean_iou_box_as_mask": float(np.mean(box_only))}
