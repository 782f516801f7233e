"""Metrics of VBench (Huang et al., CVPR 2024; Vchitect/VBench) that fit this study, computed
as VBench computes them, per video and scaled x 100 as its leaderboard shows them:

- temporal flickering: (255 - the mean absolute difference of consecutive frames) / 255
  (no model; higher = steadier);
- subject consistency: the mean over frames 2..F of (max(0, cos(frame, previous frame)) +
  max(0, cos(frame, first frame))) / 2, on DINO ViT-B/16 features (or another feature
  extractor's, named in the report);
- dynamic degree: whether RAFT's optical flow moves: a video is dynamic when at least
  round(4 F / 16) of its consecutive frame pairs have a mean of their top 5% flow magnitudes
  above 6 x min(H, W) / 256 pixels (VBench's thresholds for 8 fps videos); beside it the mean
  flow magnitude, which tells a still video from a moving one. Frames under 128 pixels a side
  (the demo's) are enlarged for RAFT and the flow is scaled back: VBench runs RAFT on the frames
  as they are;
- aesthetic quality: LAION's aesthetic predictor (a linear head on L2-normalised CLIP ViT-L/14
  image embeddings) over the frames, divided by 10.

The formulas are plain functions of frames, features and flows (tests compute them by hand);
the evaluators below extract the features with the prepared models.
"""

from __future__ import annotations

import numpy as np

#: VBench's dynamic-degree constants: the share of a flow's largest magnitudes averaged, and the
#: threshold and count for a 256-pixel, 16-frame, 8 fps video (scaled to the video's size).
TOP_FLOW_SHARE = 0.05
FLOW_THRESHOLD_AT_256 = 6.0
MOVING_PAIRS_AT_16 = 4
#: VBench's static filter: the share of a flow's largest magnitudes averaged, and the threshold
#: and count for a 256-pixel, 16-frame video (scaled to the video's size and length).
STATIC_TOP_FLOW_SHARE = 0.02
STATIC_THRESHOLD_AT_256 = 3.0
STATIC_PAIRS_AT_16 = 2
#: RAFT's refinement iterations in VBench.
RAFT_ITERATIONS = 20
#: The smallest side torchvision's RAFT takes.
RAFT_MIN_SIDE = 128
#: DINO's input: the shorter side resized to 224, ImageNet's normalisation.
DINO_SIZE = 224
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def temporal_flickering(frames: np.ndarray) -> float:
    """100 x (255 - mean over consecutive pairs of the mean absolute pixel difference) / 255."""
    frames = np.asarray(frames, dtype=np.float32)
    if len(frames) < 2:
        raise ValueError("temporal flickering needs at least 2 frames")
    differences = np.abs(frames[1:] - frames[:-1]).reshape(len(frames) - 1, -1).mean(axis=1)
    return float(100.0 * (255.0 - differences.mean()) / 255.0)


def subject_consistency(features: np.ndarray) -> float:
    """100 x the mean over frames 2..F of (max(0, cos to the previous frame) + max(0, cos to
    the first frame)) / 2, of per-frame features (F, D)."""
    features = np.asarray(features, dtype=np.float64)
    if len(features) < 2:
        raise ValueError("subject consistency needs at least 2 frames")
    unit = features / np.linalg.norm(features, axis=-1, keepdims=True)
    to_previous = np.maximum(0.0, np.sum(unit[1:] * unit[:-1], axis=-1))
    to_first = np.maximum(0.0, unit[1:] @ unit[0])
    return float(100.0 * np.mean((to_previous + to_first) / 2))


def top_flow_magnitude(flow: np.ndarray, share: float = TOP_FLOW_SHARE) -> float:
    """The mean of the largest ``share`` of a flow's (2, H, W) magnitudes (int(H W share) of
    them): 5% for dynamic degree, 2% for the static filter."""
    magnitude = np.sqrt(np.square(flow[0]) + np.square(flow[1])).ravel()
    count = int(magnitude.size * share)
    return float(np.sort(magnitude)[::-1][:count].mean())


def dynamic_degree_interval(fps: float) -> int:
    """VBench's dynamic degree reads every k-th frame, k = max(1, round(fps / 8)) (Python's
    rounding: 8 fps -> 1, 12 -> 2, 20 -> 2, 24 -> 3, 30 -> 4), so that its thresholds, set for
    8 fps, see about 8 frames a second."""
    return max(1, round(fps / 8.0))


def is_static(pair_tops, loop_tops, height: int, width: int) -> bool:
    """VBench's static filter (vbench/cli/static_filter.py), which chooses the videos temporal
    flickering is computed on: ``pair_tops`` are the top-2% flow magnitudes of the F - 1
    consecutive pairs, ``loop_tops`` those of first -> last and last -> first. Static when at
    most round(2 F / 16) pairs are above 3 x min(H, W) / 256 and both loop flows are at most
    that threshold x the count x 2 (so a video of under 4 frames is static only when its first
    and last frames do not move at all)."""
    threshold = STATIC_THRESHOLD_AT_256 * min(height, width) / 256.0
    allowed = round(STATIC_PAIRS_AT_16 * (len(pair_tops) + 1) / 16.0)
    moving = sum(value > threshold for value in pair_tops)
    return moving <= allowed and all(value <= threshold * allowed * 2 for value in loop_tops)


def is_dynamic(top_magnitudes, height: int, width: int, fps: float = 8.0) -> bool:
    """VBench's check: at least round(4 x frames / 16) pairs (``top_magnitudes``: one per
    consecutive pair, so frames = pairs + 1) above max(1, 8 / fps) x 6 x min(H, W) / 256."""
    threshold = max(1.0, 8.0 / fps) * FLOW_THRESHOLD_AT_256 * min(height, width) / 256.0
    needed = round(MOVING_PAIRS_AT_16 * (len(top_magnitudes) + 1) / 16.0)
    return sum(value > threshold for value in top_magnitudes) >= needed


def dino_input(frames: np.ndarray, size: int = DINO_SIZE):
    """uint8 frames (F, H, W, 3) as VBench gives them to DINO: the shorter side resized to
    ``size`` (bilinear, no antialiasing, still uint8), then scaled to [0, 1] and normalised."""
    import torch
    from torchvision.transforms.functional import normalize, resize

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    x = resize(x, size, antialias=False).float() / 255.0
    return normalize(x, IMAGENET_MEAN, IMAGENET_STD)


def whole_patches(x, patch: int):
    """Images (N, C, H, W) cut to the patches that fit (top-left kept), as DINO's patch
    embedding (a convolution of stride ``patch``) reads them in VBench: a 320x512 frame resized
    to 224x358 is read as 224x352 by a ViT-B/16 (22 patches across), nothing padded."""
    height, width = x.shape[-2:]
    return x[..., : height - height % patch, : width - width % patch]


def dino_features(prompt: str, videos: dict, model_dirs: dict, device="cpu", batch_size: int = 32) -> dict:
    """Per seed: the DINO CLS features (F, D) of the video's frames."""
    import torch

    from ..models.loading import load_dino

    model, _ = load_dino(model_dirs["dino"], device)
    patch = model.patch_embed.patch_size[0]
    out = {}
    with torch.no_grad():
        for seed, frames in sorted(videos.items()):
            x = whole_patches(dino_input(frames), patch)
            out[seed] = torch.cat([model(x[i:i + batch_size].to(device)).float().cpu()
                                   for i in range(0, len(x), batch_size)]).double().numpy()
    return out


def raft_features(prompt: str, videos: dict, model_dirs: dict, device="cpu", batch_size: int = 32) -> dict:
    """Per seed: RAFT's flow between each pair of consecutive frames (VBench's 20 iterations),
    summarised as the top-5% and the mean magnitudes per pair, with the frame size."""
    import torch
    import torch.nn.functional as F

    from ..models.loading import load_raft

    model = load_raft(model_dirs["raft"], device)
    out = {}
    with torch.no_grad():
        for seed, frames in sorted(videos.items()):
            x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            height, width = x.shape[-2:]
            # torchvision's RAFT needs sides of 128 pixels or more (its correlation pyramid): smaller
            # frames are enlarged by a whole factor and their flow scaled back to the frame's pixels
            scale = -(-RAFT_MIN_SIDE // min(height, width)) if min(height, width) < RAFT_MIN_SIDE else 1
            if scale > 1:
                x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
            big_h, big_w = x.shape[-2:]
            # and sides divisible by 8: padded at the edges, as VBench's InputPadder
            pad_h, pad_w = -big_h % 8, -big_w % 8
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode="replicate")
            top, mean = [], []
            pairs = len(x) - 1
            for start in range(0, pairs, batch_size):
                stop = min(start + batch_size, pairs)
                flows = model(x[start:stop].to(device), x[start + 1:stop + 1].to(device),
                              num_flow_updates=RAFT_ITERATIONS)[-1]
                flows = flows[..., pad_h // 2: pad_h // 2 + big_h, pad_w // 2: pad_w // 2 + big_w]
                if scale > 1:  # back to the frame's grid and pixels
                    flows = F.avg_pool2d(flows, scale) / scale
                flows = flows.cpu().numpy()
                top += [top_flow_magnitude(flow) for flow in flows]
                mean += [float(np.sqrt(np.square(flow).sum(axis=0)).mean()) for flow in flows]
            out[seed] = {"top": top, "mean": mean, "height": int(height), "width": int(width)}
    return out


def aesthetic_features(prompt: str, videos: dict, model_dirs: dict, device="cpu", batch_size: int = 32) -> dict:
    """Per seed: LAION's aesthetic score of each frame (the linear head on the frame's
    L2-normalised CLIP image embedding)."""
    import torch

    from ..models.loading import ClipEmbedder, load_aesthetic, load_clip

    model, preprocess, tokenizer = load_clip(model_dirs["clip"], device)
    embedder = ClipEmbedder(model, preprocess, tokenizer, device=device, batch_size=batch_size)
    head = load_aesthetic(model_dirs["aesthetic"], device)
    out = {}
    with torch.no_grad():
        for seed, frames in sorted(videos.items()):
            embeddings = torch.from_numpy(embedder.frames(frames)).float().to(device)
            if embeddings.shape[1] != head.in_features:
                raise ValueError(f"{model_dirs['aesthetic']}: the aesthetic head reads {head.in_features}-wide CLIP "
                                 f"embeddings (ViT-L/14), models.clip gives {embeddings.shape[1]}-wide ones")
            out[seed] = head(embeddings)[:, 0].double().cpu().numpy()
    return out


def aesthetic_quality(frame_scores: np.ndarray) -> float:
    """100 x the mean over frames of the aesthetic score / 10 (VBench's normalisation)."""
    return float(100.0 * np.mean(np.asarray(frame_scores) / 10.0))
