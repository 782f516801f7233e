"""Metrics of VBench (Huang et al., CVPR 2024; Vchitect/VBench) that fit this study, computed
as VBench computes them, per video and scaled x 100 as its leaderboard shows them:

- temporal flickering: (255 - the mean absolute difference of consecutive frames) / 255
  (higher = steadier), which VBench computes only on the videos its static filter keeps
  (:mod:`.flow`); the same formula on every video is this study's frame steadiness;
- subject consistency: the mean over frames 2..F of (max(0, cos(frame, previous frame)) +
  max(0, cos(frame, first frame))) / 2, on DINO ViT-B/16 features of the frames resized as
  VBench resizes them (or another feature extractor's, named in the report);
- aesthetic quality: LAION's aesthetic predictor (a linear head on L2-normalised CLIP ViT-L/14
  image embeddings of the frames preprocessed as VBench does) over the frames, divided by 10.

Dynamic degree and the static filter read RAFT's flow: :mod:`.flow`. The formulas are plain
functions of frames and features (tests compute them by hand, and against VBench's own code);
the evaluators below extract the features with the prepared models.
"""

from __future__ import annotations

import numpy as np

#: DINO's input: the shorter side resized to 224, ImageNet's normalisation.
DINO_SIZE = 224
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: OpenAI CLIP's normalisation (VBench's clip_transform).
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


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


def dino_input(frames: np.ndarray, size: int = DINO_SIZE):
    """uint8 frames (F, H, W, 3) as VBench gives them to DINO (``dino_transform``): as float
    (its ``load_video`` makes float32 tensors of 0..255), the shorter side resized to ``size``
    (bilinear, no antialiasing, nothing rounded or clipped), then scaled to [0, 1] and
    normalised with ImageNet's mean and std."""
    import torch
    from torchvision.transforms.functional import normalize, resize

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = resize(x, size, antialias=False) / 255.0
    return normalize(x, IMAGENET_MEAN, IMAGENET_STD)


def clip_input(frames: np.ndarray, size: int):
    """uint8 frames (F, H, W, 3) as VBench gives them to CLIP for aesthetic quality
    (``clip_transform``): as float 0..255, the shorter side resized to ``size`` (bicubic, no
    antialiasing, nothing rounded or clipped), the centre ``size`` x ``size`` cut, scaled to
    [0, 1] and normalised with OpenAI CLIP's mean and std (not open_clip's PIL preprocessing,
    which antialiases)."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import center_crop, normalize, resize

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = center_crop(resize(x, size, interpolation=InterpolationMode.BICUBIC, antialias=False), size) / 255.0
    return normalize(x, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)


def load_dino_model(model_dirs: dict, device="cpu", batch_size: int = 32) -> dict:
    """The DINO evaluator's load step, once per evaluate job."""
    from ..models.loading import load_dino

    return {"dino": load_dino(model_dirs["dino"], device)[0]}


def dino_features(prompt: str, videos: dict, models: dict, device="cpu", batch_size: int = 32) -> dict:
    """Per seed: the DINO CLS features (F, D) of the video's frames; ``models["dino"]``: the
    prepared folder or the model :func:`load_dino_model` loaded."""
    import torch

    from ..models.loading import load_dino, loaded_model

    model = loaded_model(models["dino"], lambda folder, dev: load_dino(folder, dev)[0], device)
    out = {}
    with torch.no_grad():
        for seed, frames in sorted(videos.items()):
            x = dino_input(frames)
            out[seed] = torch.cat([model(x[i:i + batch_size].to(device)).float().cpu()
                                   for i in range(0, len(x), batch_size)]).double().numpy()
    return out


def load_aesthetic_models(model_dirs: dict, device="cpu", batch_size: int = 32) -> dict:
    """The aesthetic evaluator's load step (the CLIP model and LAION's head), once per evaluate job."""
    from ..models.loading import load_aesthetic, load_clip

    return {"clip": load_clip(model_dirs["clip"], device)[0], "aesthetic": load_aesthetic(model_dirs["aesthetic"], device)}


def aesthetic_features(prompt: str, videos: dict, models: dict, device="cpu", batch_size: int = 32) -> dict:
    """Per seed: LAION's aesthetic score of each frame (the linear head on the frame's
    L2-normalised CLIP image embedding, the frame preprocessed by :func:`clip_input` at the
    CLIP's own input size: 224 for ViT-L/14)."""
    import torch

    from ..models.loading import load_aesthetic, load_clip, loaded_model

    model = loaded_model(models["clip"], lambda folder, dev: load_clip(folder, dev)[0], device)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    head = loaded_model(models["aesthetic"], load_aesthetic, device)
    out = {}
    with torch.no_grad():
        for seed, frames in sorted(videos.items()):
            x = clip_input(frames, size)
            embeddings = torch.cat([model.encode_image(x[i:i + batch_size].to(device)).float()
                                    for i in range(0, len(x), batch_size)])
            if embeddings.shape[1] != head.in_features:
                raise ValueError(f"models.aesthetic: the aesthetic head reads {head.in_features}-wide CLIP "
                                 f"embeddings (ViT-L/14), models.clip gives {embeddings.shape[1]}-wide ones")
            embeddings = embeddings / embeddings.norm(dim=-1, keepdim=True)
            out[seed] = head(embeddings)[:, 0].double().cpu().numpy()
    return out


def aesthetic_quality(frame_scores: np.ndarray) -> float:
    """100 x the mean over frames of the aesthetic score / 10 (VBench's normalisation)."""
    return float(100.0 * np.mean(np.asarray(frame_scores) / 10.0))
