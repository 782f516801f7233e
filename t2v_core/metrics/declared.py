"""The study's metrics and their evaluators, registered in the order of the table's columns:
CLIP's (the poster's three and the diversity readings), VBench's dimensions that fit the study
(computed on the videos VBench computes them on; :mod:`.vbench` and :mod:`.flow` have the
formulas), Lai et al.'s warping error, and this study's frame steadiness and CLIP-token subject
consistency. Plugins register theirs with :func:`.registry.register_metric`."""

from __future__ import annotations

from . import clip, flow, vbench
from .registry import Evaluator, Metric, register_evaluator, register_metric, switched_on
from .registry import metrics as registered_metrics


def _any_switched_on(evaluator: str):
    """``applies`` of an evaluator that runs only for its switched-on metrics."""
    return lambda config: any(switched_on(m, config["evaluation"]["metrics"]) for m in registered_metrics(evaluator))


register_evaluator(Evaluator(
    "clip", clip.load_clip_features, models=("clip",), load=clip.load_embedder,
    description="CLIP cosine similarities x 100 (alignment, consistency, diversity)",
))
register_metric(Metric(
    "alignment", "Alignment", "↑", "video", "clip", lambda video: clip.alignment(video.frames, video.text),
    "a video's alignment is the mean over its frames of cos(frame, prompt)", unit="CLIP cosine x 100",
    poster=True,
))
register_metric(Metric(
    "consistency", "Consistency", "↑", "video", "clip", lambda video: clip.consistency(video.frames),
    "its consistency the mean over consecutive frame pairs of cos(frame t, frame t+1)", unit="CLIP cosine x 100",
    poster=True,
))
register_metric(Metric(
    "diversity", "Diversity", "↓", "prompt", "clip", None,
    "diversity is the reading that evaluation.diversity chooses (below)", unit="CLIP cosine x 100", poster=True,
    readings=("diversity_prompts", "diversity_seeds", "diversity_frames"), tables=("comparison",),
))
register_metric(Metric(
    "diversity_prompts", "Diversity across prompts", "↓", "motion", "clip",
    lambda prompts: clip.diversity_across_prompts({p: [v.frames for v in videos] for p, videos in prompts.items()}),
    "diversity across prompts is one value per prompt: the mean similarity of its videos to the videos of the "
    "other prompts of its motion, each embedded as the mean of its frame embeddings", unit="CLIP cosine x 100",
    tables=("motions",),
))
register_metric(Metric(
    "diversity_seeds", "Diversity across seeds", "↓", "prompt", "clip",
    lambda videos: clip.diversity([v.frames for v in videos]),
    "diversity across seeds is one value per prompt: the mean pairwise similarity of its seeds' videos, each "
    "embedded as the mean of its frame embeddings", unit="CLIP cosine x 100", tables=("motions",),
))
register_metric(Metric(
    "diversity_frames", "Diversity frame by frame", "↓", "prompt", "clip",
    lambda videos: clip.diversity_frames([v.frames for v in videos]),
    "diversity frame by frame is one value per prompt: the mean over pairs of its seeds' videos and over frame "
    "indices of cos(frame f of one, frame f of the other)", unit="CLIP cosine x 100", tables=("motions",),
))

register_evaluator(Evaluator(
    "clip_patch_tokens", clip.load_clip_patch_tokens, models=("clip",), load=clip.load_embedder, applies=_any_switched_on("clip_patch_tokens"),
    description="the CLIP image tower's patch tokens of the frames (subject consistency where there is no DINO)",
))
register_metric(Metric(
    "subject_consistency_clip", "Subject consistency (CLIP patch tokens)", "↑", "video", "clip_patch_tokens",
    vbench.subject_consistency,
    "subject consistency on CLIP patch tokens is VBench's subject consistency (below) on the CLIP image tower's "
    "patch tokens of each frame, flattened, in place of DINO's features (the stand-in where there is no DINO: "
    "unlike CLIP's pooled embedding, which hardly changes when the subject moves or jumps, the tokens keep where "
    "it is)", unit="x 100", switch="subject_consistency_clip",
))

# VBench's dimensions (Vchitect/VBench) that fit the study, computed on the videos VBench computes
# them on; t2v_core/metrics/vbench.py and flow.py have the formulas.
register_evaluator(Evaluator(
    "frames", lambda prompt, videos, models, device="cpu", batch_size=32: dict(sorted(videos.items())),
    applies=_any_switched_on("frames"), description="the frames themselves (no model)",
))
register_metric(Metric(
    "frame_steadiness", "Frame steadiness (all videos)", "↑", "video", "frames", vbench.temporal_flickering,
    "frame steadiness is VBench's temporal-flickering formula on every video, not VBench's dimension (which "
    "scores static videos only): 100 x (255 - the mean absolute difference of consecutive frames) / 255; on "
    "moving videos it mostly measures how little they move", unit="x 100", switch="frame_steadiness",
))
register_evaluator(Evaluator(
    "dino", vbench.dino_features, models=("dino",), load=vbench.load_dino_model, applies=_any_switched_on("dino"),
    description="DINO ViT-B/16 features of the frames (VBench's subject consistency)",
))
register_metric(Metric(
    "subject_consistency_dino", "Subject consistency (DINO)", "↑", "video", "dino",
    vbench.subject_consistency,
    "subject consistency is VBench's, on every video: 100 x the mean over frames 2..F of (max(0, cos(frame, "
    "previous frame)) + max(0, cos(frame, first frame))) / 2 on DINO ViT-B/16 features of the frames resized "
    "to 224 on the shorter side", unit="x 100", switch="subject_consistency_dino",
))
register_evaluator(Evaluator(
    "raft", flow.raft_features, models=("raft",), load=flow.load_raft_model, applies=_any_switched_on("raft"),
    description="RAFT optical flow, 20 iterations, as VBench runs it (VBench's static filter and dynamic "
                "degree, Lai et al.'s warping error)",
))
register_metric(Metric(
    "temporal_flickering", "Temporal flickering (static videos)", "↑", "video", "raft", flow.flickering_if_static,
    "temporal flickering is VBench's, on the videos its static filter keeps (at most round(2 F / 16) consecutive "
    "pairs whose top-2% RAFT flow magnitudes average above 3 x min(H, W) / 256 pixels, and first and last frames "
    "within twice that count of the threshold, both ways): 100 x (255 - the mean absolute difference of "
    "consecutive frames) / 255, averaged over the videos kept, whose number is given beside it (none kept: n/a)",
    unit="x 100", switch="temporal_flickering", computed_on="static videos (VBench's static filter)",
))
register_metric(Metric(
    "static_video", "Static (VBench's filter)", "↑", "video", "raft", lambda f: float(flow.static(f)),
    "1 when VBench's static filter keeps the video", tables=(), switch="temporal_flickering",
))
register_metric(Metric(
    "warping_error", "Warping error", "↓", "video", "raft", lambda f: flow.warping_error(f["pair_warping"]),
    "warping error is Lai et al.'s (ECCV 2018), on every video: 1000 x the mean over consecutive pairs of the "
    "mean squared difference (RGB in [0, 1]) between a frame and the next one warped back by RAFT's forward flow, "
    "over the pixels a forward-backward check does not mark occluded", unit="x 1000", switch="warping_error",
))
register_metric(Metric(
    "dynamic_degree", "Dynamic degree %", "↑", "video", "raft",
    lambda f: 100.0 * flow.is_dynamic(f["dynamic_top"], f["height"], f["width"]),
    "dynamic degree is VBench's, on every video: the share of videos whose RAFT flow moves (of the frames read, "
    "every round(fps / 8)-th, at least round(4 F / 16) pairs with a mean of their top 5% flow magnitudes above "
    "6 x min(H, W) / 256 pixels)", unit="%", switch="dynamic_degree",
))
register_metric(Metric(
    "flow_magnitude", "Flow magnitude", "↑", "video", "raft", lambda f: float(sum(f["mean"]) / len(f["mean"])),
    "flow magnitude is RAFT's mean flow between consecutive frames, in pixels per frame (0 = a still video)",
    unit="pixels per frame", switch="dynamic_degree",
))
register_evaluator(Evaluator(
    "aesthetic", vbench.aesthetic_features, models=("clip", "aesthetic"), load=vbench.load_aesthetic_models,
    applies=_any_switched_on("aesthetic"),
    description="LAION's aesthetic predictor on the CLIP image embeddings of the frames",
))
register_metric(Metric(
    "aesthetic_quality", "Aesthetic quality", "↑", "video", "aesthetic", vbench.aesthetic_quality,
    "aesthetic quality is VBench's, on every video: 100 x the mean over frames of LAION's aesthetic score / 10 (the "
    "linear head on CLIP ViT-L/14 image embeddings of the frames resized bicubic to 224 and centre-cut)", unit="x 100", switch="aesthetic_quality",
))
