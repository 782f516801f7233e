"""The metrics read from RAFT's optical flow, each as its authors compute it:

- VBench's static filter (``vbench/cli/static_filter.py``), which chooses the videos VBench's
  temporal flickering is computed on: a video is static when few of its consecutive frame pairs
  move (the mean of a pair's top 2% flow magnitudes above 3 x min(H, W) / 256 pixels, at most
  round(2 F / 16) such pairs) and its first and last frames barely differ (both ways);
- VBench's dynamic degree (``vbench/dynamic_degree.py``): a video is dynamic when at least
  round(4 F / 16) of its consecutive pairs have a mean of their top 5% flow magnitudes above
  6 x min(H, W) / 256 pixels, F counting the frames read: every round(fps / 8)-th one;
- the warping error of Lai et al. (ECCV 2018, "Learning blind video temporal consistency"):
  each frame against the next one warped back by the forward flow, over the pixels that a
  forward-backward check does not mark occluded (the motion-compensated consistency of moving
  videos, where frame differences measure motion).

VBench runs RAFT on the frames as they are, padded (edge pixels repeated) to multiples of 8,
and reads the padded flow; so does :func:`raft_features`. torchvision's RAFT needs sides of 128
pixels or more: smaller frames (the toy world's) are enlarged by a whole factor and their flow
brought back to the frame's grid and pixels, a step VBench has not.
"""

from __future__ import annotations

import numpy as np

#: VBench's dynamic degree: the share of a flow's largest magnitudes averaged, and the threshold
#: and count for a 256-pixel, 16-frame video read at 8 fps (scaled to the video's size).
TOP_FLOW_SHARE = 0.05
FLOW_THRESHOLD_AT_256 = 6.0
MOVING_PAIRS_AT_16 = 4
#: VBench's static filter: the share averaged, and the threshold and count for a 256-pixel,
#: 16-frame video (scaled to the video's size and length).
STATIC_TOP_FLOW_SHARE = 0.02
STATIC_THRESHOLD_AT_256 = 3.0
STATIC_PAIRS_AT_16 = 2
#: RAFT's refinement iterations in VBench.
RAFT_ITERATIONS = 20
#: The smallest side torchvision's RAFT takes.
RAFT_MIN_SIDE = 128
#: Lai et al.'s forward-backward occlusion check (after Ruder et al. 2016): occluded where the
#: round trip misses by more than 1% of the two flows' squared lengths + 0.5 pixel², or where
#: the flow's squared gradient exceeds 1% of its squared length + 0.002 (motion boundaries).
ROUND_TRIP_SHARE, ROUND_TRIP_SLACK = 0.01, 0.5
BOUNDARY_SHARE, BOUNDARY_SLACK = 0.01, 0.002


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
    """VBench's static filter: ``pair_tops`` are the top-2% flow magnitudes of the F - 1
    consecutive pairs, ``loop_tops`` those of first -> last and last -> first. Static when at
    most round(2 F / 16) pairs are above 3 x min(H, W) / 256 and both loop flows are at most
    that threshold x the count x 2 (so a video of under 4 frames is static only when its first
    and last frames do not move at all)."""
    threshold = STATIC_THRESHOLD_AT_256 * min(height, width) / 256.0
    allowed = round(STATIC_PAIRS_AT_16 * (len(pair_tops) + 1) / 16.0)
    moving = sum(value > threshold for value in pair_tops)
    return moving <= allowed and all(value <= threshold * allowed * 2 for value in loop_tops)


def is_dynamic(top_magnitudes, height: int, width: int) -> bool:
    """VBench's check: at least round(4 x frames / 16) pairs (``top_magnitudes``: one per pair of
    consecutive frames read, so frames = pairs + 1) above 6 x min(H, W) / 256."""
    threshold = FLOW_THRESHOLD_AT_256 * min(height, width) / 256.0
    needed = round(MOVING_PAIRS_AT_16 * (len(top_magnitudes) + 1) / 16.0)
    return sum(value > threshold for value in top_magnitudes) >= needed


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (C, H, W) sampled at x + flow(x) (bilinear, edge pixels beyond the border):
    the next frame brought back onto this one's grid by the forward flow (2, H, W)."""
    import torch
    import torch.nn.functional as F

    channels, height, width = image.shape
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    x = (xs + flow[0]) * 2.0 / max(width - 1, 1) - 1.0
    y = (ys + flow[1]) * 2.0 / max(height - 1, 1) - 1.0
    grid = torch.from_numpy(np.stack([x, y], axis=-1)[None]).double()
    sampled = F.grid_sample(torch.from_numpy(np.asarray(image, np.float64))[None], grid, mode="bilinear",
                            padding_mode="border", align_corners=True)
    return sampled[0].numpy()


def occluded(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Lai et al.'s occlusion mask (H, W) on the first frame's grid, from the forward flow
    (first -> second, on the first frame's grid) and the backward one (second -> first, on the
    second's): where the round trip does not come back, or on the forward flow's motion
    boundaries (its differences to the right and below neighbours)."""
    back = warp(backward, forward)
    round_trip = np.square(forward + back).sum(axis=0)
    lengths = np.square(back).sum(axis=0) + np.square(forward).sum(axis=0)
    gradient = np.zeros(forward.shape[1:])
    gradient[:, :-1] += np.square(forward[:, :, :-1] - forward[:, :, 1:]).sum(axis=0)
    gradient[:-1, :] += np.square(forward[:, :-1, :] - forward[:, 1:, :]).sum(axis=0)
    forward_length = np.square(forward).sum(axis=0)
    return (round_trip > ROUND_TRIP_SHARE * lengths + ROUND_TRIP_SLACK) | \
        (gradient > BOUNDARY_SHARE * forward_length + BOUNDARY_SLACK)


def pair_warping_error(first: np.ndarray, second: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> float:
    """Lai et al.'s E_warp of two uint8 frames (H, W, 3): the mean over the non-occluded pixels
    and their 3 channels of (second warped back - first)², values in [0, 1]; 0 when every pixel
    is occluded (their evaluation script divides the masked sum by the frame's size then)."""
    first = np.moveaxis(np.asarray(first, np.float64) / 255.0, -1, 0)
    warped = warp(np.moveaxis(np.asarray(second, np.float64) / 255.0, -1, 0), forward)
    visible = ~occluded(forward, backward)
    squared = np.square(warped - first) * visible
    count = visible.sum() * first.shape[0]
    return float(squared.sum() / (count if count else squared.size))


def warping_error(pair_errors) -> float:
    """A video's warping error, x 1000: the mean of its consecutive pairs' E_warp."""
    return float(1000.0 * np.mean(pair_errors))


def torch_device_type(device) -> str:
    return device.type if hasattr(device, "type") else str(device).split(":")[0]


class RaftFlows:
    """RAFT's flows between frame pairs as VBench runs it (20 iterations, frames padded to
    multiples of 8 by repeating their edges), on frames enlarged when a side is under 128."""

    def __init__(self, model, height: int, width: int, device="cpu", batch_size: int = 32):
        # batches of pairs on a GPU; one pair at a time on a CPU, where a batch's all-pairs
        # correlation volumes outgrow the caches (15 pairs of 320x512 frames through the tiny
        # RAFT: 3.7 s one by one, 5.5 s as one batch)
        self.model, self.device = model, device
        self.batch_size = batch_size if torch_device_type(device) == "cuda" else 1
        self.height, self.width = height, width
        self.scale = -(-RAFT_MIN_SIDE // min(height, width)) if min(height, width) < RAFT_MIN_SIDE else 1
        big_h, big_w = height * self.scale, width * self.scale
        self.pad_h, self.pad_w = -big_h % 8, -big_w % 8
        self.crop = (slice(self.pad_h // 2, self.pad_h // 2 + big_h), slice(self.pad_w // 2, self.pad_w // 2 + big_w))

    def _input(self, frames: np.ndarray):
        import torch
        import torch.nn.functional as F

        # RAFT's own normalisation: 2 x (x / 255) - 1
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if self.scale > 1:
            x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        pad = (self.pad_w // 2, self.pad_w - self.pad_w // 2, self.pad_h // 2, self.pad_h - self.pad_h // 2)
        return F.pad(x, pad, mode="replicate")

    def __call__(self, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The flows (N, 2, ., .) from each of ``first`` to the same index of ``second`` (uint8
        frames (N, H, W, 3)): (the flows VBench scores: the padded ones, or on the frame's grid
        for enlarged frames; the flows on the frame's grid, in its pixels)."""
        import torch
        import torch.nn.functional as F

        scored, on_grid = [], []
        with torch.no_grad():
            for start in range(0, len(first), self.batch_size):
                a = self._input(first[start:start + self.batch_size]).to(self.device)
                b = self._input(second[start:start + self.batch_size]).to(self.device)
                flows = self.model(a, b, num_flow_updates=RAFT_ITERATIONS)[-1].float().cpu()
                grid = flows[..., self.crop[0], self.crop[1]]
                if self.scale > 1:  # back to the frame's grid and pixels
                    grid = F.avg_pool2d(grid, self.scale) / self.scale
                scored.append((grid if self.scale > 1 else flows).numpy())
                on_grid.append(grid.numpy())
        return np.concatenate(scored), np.concatenate(on_grid)


def video_flow_features(flows: RaftFlows, frames: np.ndarray, fps: float, wanted: set[str]) -> dict:
    """What the flow metrics in ``wanted`` (metric names) read from one video: "mean" (the mean
    flow magnitude of each consecutive pair), "dynamic_top" (top-5% magnitudes of the pairs of
    the frames dynamic degree reads), "static_pairs" and "static_loops" (top-2% magnitudes of the
    consecutive pairs and of first <-> last), "pair_warping" (each pair's E_warp)."""
    out = {"height": flows.height, "width": flows.width}
    scored, forward = flows(frames[:-1], frames[1:])
    if {"flow_magnitude", "dynamic_degree"} & wanted:
        out["mean"] = [float(np.sqrt(np.square(flow).sum(axis=0)).mean()) for flow in forward]
    if "dynamic_degree" in wanted:
        step = dynamic_degree_interval(fps)
        read = frames[::step]
        dynamic = scored if step == 1 else flows(read[:-1], read[1:])[0]
        out["dynamic_top"] = [top_flow_magnitude(flow) for flow in dynamic]
    if {"temporal_flickering", "static_video"} & wanted:
        loops = flows(frames[[0, -1]], frames[[-1, 0]])[0]
        out["static_pairs"] = [top_flow_magnitude(flow, STATIC_TOP_FLOW_SHARE) for flow in scored]
        out["static_loops"] = [top_flow_magnitude(flow, STATIC_TOP_FLOW_SHARE) for flow in loops]
    if "warping_error" in wanted:
        _, backward = flows(frames[1:], frames[:-1])
        out["pair_warping"] = [pair_warping_error(frames[i], frames[i + 1], forward[i], backward[i])
                               for i in range(len(forward))]
    return out


def load_raft_model(model_dirs: dict, device="cpu", batch_size: int = 32) -> dict:
    """The RAFT evaluator's load step, once per evaluate job."""
    from ..models.loading import load_raft

    return {"raft": load_raft(model_dirs["raft"], device)}


def raft_features(prompt: str, videos: dict, models: dict, device="cpu", batch_size: int = 32,
                  fps: float = 8.0, metrics=None) -> dict:
    """Per seed: :func:`video_flow_features` of the video (for ``metrics``, names of the flow
    metrics computed; None = all), and, for temporal flickering, its frames' flickering score."""
    from ..models.loading import load_raft, loaded_model
    from .vbench import temporal_flickering

    wanted = set(metrics) if metrics is not None else {
        "flow_magnitude", "dynamic_degree", "temporal_flickering", "static_video", "warping_error"}
    model = loaded_model(models["raft"], load_raft, device)
    out = {}
    for seed, frames in sorted(videos.items()):
        flows = RaftFlows(model, frames.shape[1], frames.shape[2], device=device, batch_size=batch_size)
        out[seed] = video_flow_features(flows, frames, fps, wanted)
        if "temporal_flickering" in wanted:
            out[seed]["flickering"] = temporal_flickering(frames)
    return out


def static(features: dict) -> bool:
    return is_static(features["static_pairs"], features["static_loops"], features["height"], features["width"])


def flickering_if_static(features: dict) -> float:
    """VBench's temporal flickering of a video its static filter keeps; NaN for a moving one
    (VBench does not score it)."""
    return features["flickering"] if static(features) else float("nan")
