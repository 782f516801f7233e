"""Our VBench dimensions against VBench's own code (PyPI vbench 0.1.5, byte-identical to
Vchitect/VBench 45e79ec in these modules), on the same mp4 files with the same tiny models.

vbench pins numpy<2 and transformers 4.33, so it is not in our environment: ``make test`` puts
it, with the two modules these dimensions import (cv2, easydict), into .vbench-oracle with
``pip install --no-deps`` (see the Makefile). Its models are ours, handed to its functions:
its loaders would download DINO, RAFT, CLIP and LAION's head. Its RAFT is called
``model(image1, image2, iters=20, test_mode=True)`` on 0..255 frames and returns (_, flow): the
adapter below gives it torchvision's RAFT (ours) on RAFT's own normalisation. The ``clip``
package is stubbed: only its downloader (``clip.load``) uses it.

Tolerance: VBench embeds one frame at a time and sums frame differences pair by pair, we batch
both; float32 sums in another order
differ in the 6th-7th digit, so scores agree to 1e-5 (relative) and decisions exactly.
"""

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from t2v_core.metrics import flow, vbench
from t2v_core.video_io import read_video, write_mp4

ORACLE = Path(__file__).resolve().parents[1] / ".vbench-oracle"
RTOL = 1e-5


@pytest.fixture(scope="module")
def oracle():
    """VBench's modules for the dimensions we compute (imported from .vbench-oracle)."""
    if not (ORACLE / "vbench" / "__init__.py").exists():
        pytest.skip(f"VBench's code is not installed in {ORACLE.name} (make test installs it: "
                    "pip install --no-deps --target .vbench-oracle vbench==0.1.5 opencv-python-headless easydict)")
    sys.path.insert(0, str(ORACLE))
    try:
        sys.modules.setdefault("clip", types.ModuleType("clip"))  # only clip.load (a download) uses it
        import vbench.aesthetic_quality as aesthetic_quality
        import vbench.cli.static_filter as static_filter
        import vbench.dynamic_degree as dynamic_degree
        import vbench.subject_consistency as subject_consistency
        import vbench.temporal_flickering as temporal_flickering
    finally:
        sys.path.remove(str(ORACLE))
    static_filter.DEVICE = "cpu"  # its frames go to this module global, 'cuda' as shipped
    return types.SimpleNamespace(aesthetic=aesthetic_quality, static_filter=static_filter,
                                 dynamic=dynamic_degree, subject=subject_consistency, flickering=temporal_flickering)


def square_video(frames, step, size=(130, 132), seed=0, noise=0):
    """A textured square moving ``step`` pixels a frame on a textured background (even sides:
    H.264's yuv420p), not a multiple of 8 (RAFT's input is padded); with ``noise``, new random
    levels in every frame (features that change from frame to frame)."""
    rng = np.random.default_rng(seed)
    background = rng.integers(40, 90, (*size, 3)).astype(np.uint8)
    square = rng.integers(150, 255, (40, 40, 3)).astype(np.uint8)
    video = np.repeat(background[None], frames, axis=0)
    for f in range(frames):
        x = 10 + step * f
        video[f, 40:80, x:x + 40] = square
    if noise:
        video = np.clip(video + rng.integers(-noise, noise + 1, video.shape), 0, 255).astype(np.uint8)
    return video


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """mp4 files (path -> frame rate): still, slow, fast and noisy at 8 fps, and one at 24 fps."""
    folder = tmp_path_factory.mktemp("oracle_videos")
    specs = {"still": (16, 0, 8, 0), "slow": (16, 1, 8, 0), "fast": (16, 5, 8, 0), "noisy": (16, 2, 8, 60),
             "fast24": (13, 6, 24, 0)}
    out = {}
    for name, (frames, step, fps, noise) in specs.items():
        path = folder / f"{name}.mp4"
        write_mp4(path, square_video(frames, step, seed=len(out), noise=noise), fps)
        out[str(path)] = fps
    return out


class VBenchRaft(torch.nn.Module):
    """Our RAFT (torchvision's) called as VBench calls its own."""

    def __init__(self, raft):
        super().__init__()
        self.raft = raft

    def forward(self, image1, image2, iters=20, test_mode=True):
        return None, self.raft(image1 / 127.5 - 1.0, image2 / 127.5 - 1.0, num_flow_updates=iters)[-1]


def recording(method, into: list):
    def wrapper(*args, **kwargs):
        value = method(*args, **kwargs)
        into.append(float(value))
        return value
    return wrapper


def vbench_flow_scorer(cls, raft):
    """VBench's StaticFilter or DynamicDegree with our RAFT (its __init__ loads a checkpoint)."""
    scorer = cls.__new__(cls)
    scorer.args, scorer.device, scorer.model = None, "cpu", VBenchRaft(raft).eval()
    scorer.scores = []
    scorer.get_score = recording(scorer.get_score, scorer.scores)
    return scorer


@pytest.fixture(scope="module")
def still_raft(tiny_model_dir, tmp_path_factory):
    """The tiny RAFT with its flow head's last layer zeroed: it sees no motion anywhere, so
    VBench's static filter keeps every video (the random tiny RAFT's flows keep none)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from t2v_core.models.layout import RAFT_SAFETENSORS_FILE

    folder = tmp_path_factory.mktemp("still_raft") / "raft"
    shutil.copytree(tiny_model_dir / "raft", folder)
    state = load_file(folder / RAFT_SAFETENSORS_FILE)
    for key in ("update_block.flow_head.conv2.weight", "update_block.flow_head.conv2.bias"):
        state[key] = torch.zeros_like(state[key])
    save_file(state, folder / RAFT_SAFETENSORS_FILE)
    return folder


def test_temporal_flickering_and_its_static_filter_are_vbenchs(oracle, videos, tiny_model_dir, still_raft):
    """Per video: VBench's static decision and its N + 1 scores, and its flickering score; over
    the videos: VBench's temporal flickering of the videos its filter keeps. With the tiny RAFT
    (every video moves) and with one that sees no motion (every video is kept)."""
    from t2v_core.models.loading import load_raft

    decisions = set()
    for raft_dir in (tiny_model_dir / "raft", still_raft):
        raft = load_raft(raft_dir)
        ours = flow.raft_features("a prompt", {i: read_video(p) for i, p in enumerate(videos)},
                                  {"raft": raft_dir}, metrics=["temporal_flickering"])
        kept = []
        for i, path in enumerate(videos):
            scorer = vbench_flow_scorer(oracle.static_filter.StaticFilter, raft)
            theirs_static = scorer.infer(path)
            np.testing.assert_allclose(ours[i]["static_pairs"] + ours[i]["static_loops"], scorer.scores,
                                       rtol=RTOL, atol=1e-6)
            assert flow.static(ours[i]) == theirs_static
            decisions.add(theirs_static)
            assert ours[i]["flickering"] == pytest.approx(100 * oracle.flickering.cal_score(path), rel=RTOL)
            if theirs_static:
                kept.append(path)
        values = [flow.flickering_if_static(f) for f in ours.values()]
        assert sum(np.isfinite(values)) == len(kept)
        if kept:
            theirs, _ = oracle.flickering.temporal_flickering(kept)
            assert np.nanmean(values) == pytest.approx(100 * theirs, rel=RTOL)
    assert decisions == {True, False}


def test_dynamic_degree_is_vbenchs_at_8_and_24_fps(oracle, videos, tiny_model_dir):
    """VBench reads the frame rate from the file and every round(fps / 8)-th frame; we are given
    the config's frame rate (the one the videos were written at)."""
    from t2v_core.models.loading import load_raft

    raft = load_raft(tiny_model_dir / "raft")
    for path, fps in videos.items():
        ours = flow.raft_features("a prompt", {0: read_video(path)}, {"raft": tiny_model_dir / "raft"}, fps=fps,
                                  metrics=["dynamic_degree"])[0]
        scorer = vbench_flow_scorer(oracle.dynamic.DynamicDegree, raft)
        theirs = scorer.infer(path)
        assert len(ours["dynamic_top"]) == len(scorer.scores) == (4 if fps == 24 else 15)
        np.testing.assert_allclose(ours["dynamic_top"], scorer.scores, rtol=RTOL)
        assert flow.is_dynamic(ours["dynamic_top"], ours["height"], ours["width"]) == theirs


def test_subject_consistency_is_vbenchs(oracle, videos, tiny_model_dir):
    """Our DINO input (the frames resized as floats) is the one VBench's dino_transform gives the
    model, and our score is its loop's on the decoded files, with our DINO (which reads the
    whole patches and interpolates positions as DINO's code) handed to VBench. The tiny random
    DINO's features hardly change between frames, so its scores alone would not show a
    preprocessing error: the inputs are compared too."""
    from t2v_core.models.loading import load_dino

    model, _ = load_dino(tiny_model_dir / "dino")
    paths = list(videos)
    frames = {i: read_video(p) for i, p in enumerate(paths)}
    ours = vbench.dino_features("a prompt", frames, {"dino": tiny_model_dir / "dino"})
    seen = []

    def dino(x):
        seen.append(x)
        return model(x)

    _, theirs = oracle.subject.subject_consistency(dino, paths, "cpu", read_frame=False)
    for i, result in enumerate(theirs):
        assert vbench.subject_consistency(ours[i]) == pytest.approx(100 * result["video_results"], rel=RTOL)
    their_input = torch.cat(seen)
    assert their_input.shape[-2:] == (224, 227)
    torch.testing.assert_close(torch.cat([vbench.dino_input(f) for f in frames.values()]), their_input,
                               rtol=0, atol=1e-5)


def test_aesthetic_quality_is_vbenchs(oracle, videos, tmp_path):
    """VBench's clip_transform (bicubic to 224 on floats, centre cut) and head on our CLIP: a tiny
    open_clip model at ViT-L/14's 224-pixel input, as VBench resizes to 224 whatever the model."""
    from t2v_core.models.loading import load_aesthetic, load_clip
    from t2v_core.models.tiny import create_tiny_aesthetic, create_tiny_clip

    create_tiny_clip(tmp_path / "clip", seed=1, image_size=224)
    create_tiny_aesthetic(tmp_path / "aesthetic", seed=1)
    dirs = {"clip": tmp_path / "clip", "aesthetic": tmp_path / "aesthetic"}
    paths = list(videos)
    ours = vbench.aesthetic_features("a prompt", {i: read_video(p) for i, p in enumerate(paths)}, dirs)
    model, _, _ = load_clip(dirs["clip"])
    seen = []

    class Recording:  # VBench's CLIP: eval() and encode_image() (ours, its inputs kept)
        def eval(self):
            return self

        def encode_image(self, x):
            seen.append(x)
            return model.encode_image(x)

    _, theirs = oracle.aesthetic.laion_aesthetic(load_aesthetic(dirs["aesthetic"]), Recording(), paths, "cpu")
    for i, result in enumerate(theirs):
        assert vbench.aesthetic_quality(ours[i]) == pytest.approx(100 * result["video_results"], rel=RTOL)
    frames = [read_video(p) for p in paths]
    torch.testing.assert_close(torch.cat([vbench.clip_input(f, 224) for f in frames]), torch.cat(seen),
                               rtol=0, atol=1e-5)
