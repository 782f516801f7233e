"""How the sampling jobs use the hardware: precision, seed batches, compile (issue 15)."""

import numpy as np
import pytest
import torch

from t2v_core.jobs.sample import sample_motion
from t2v_core.methods.base import Method
from t2v_core.prompts import sample_file
from t2v_core.runtime import compile_options, sampling_dtype, seed_batch_size
from t2v_core.video_io import read_video


@pytest.mark.parametrize("precision, device, bf16, expected", [
    ("auto", "cpu", None, torch.float32),      # half precision is slower on CPUs
    ("auto", "cuda", True, torch.bfloat16),
    ("auto", "cuda:1", False, torch.float16),  # GPUs without bf16
    ("fp32", "cuda", True, torch.float32),
    ("bf16", "cpu", None, torch.bfloat16),
    ("fp16", "cuda", True, torch.float16),
])
def test_sampling_precision(precision, device, bf16, expected):
    assert sampling_dtype(precision, device, bf16_supported=bf16) == expected


@pytest.mark.parametrize("setting, device, seeds, expected", [
    ("auto", "cpu", 3, 1), ("auto", "cuda", 3, 3), (2, "cpu", 3, 2), (8, "cuda", 3, 3), (1, "cuda", 3, 1),
])
def test_seed_batch_size(setting, device, seeds, expected):
    assert seed_batch_size(setting, device, seeds) == expected


@pytest.mark.parametrize("setting, device, videos, expected", [
    ("auto", "cpu", 100, None), ("auto", "cuda", 11, None), ("auto", "cuda", 12, {}),
    ("on", "cpu", 1, {}), ("off", "cuda", 100, None),
])
def test_compile_choice(setting, device, videos, expected):
    assert compile_options(setting, device, videos, min_videos=12) == expected


#: The sampling settings of a method without a block of its own.
NO_SETTINGS = {"num_inference_steps": 2, "seed_coloured": {}}


class SeedColoured(Method):
    """A method whose video of a seed is that seed's grey level; runs out of memory above
    ``max_batch`` videos per call, and records what it was given."""

    def __init__(self, max_batch):
        super().__init__("seed_coloured", "Seed coloured", "test")
        object.__setattr__(self, "calls", [])
        object.__setattr__(self, "max_batch", max_batch)

    def load(self, model_dirs, adapter_dir, device, dtype=None):
        self.calls.append(("load", dtype))
        return "loaded"

    def sample(self, loaded, prompt, generator, call, first_frame=None):
        seed = generator.initial_seed()
        return np.full((call.num_frames, call.height, call.width, 3), 10 * seed, np.uint8)

    def sample_batch(self, loaded, prompt, generators, call, first_frame=None):
        self.calls.append(("batch", len(generators)))
        if len(generators) > self.max_batch:
            raise torch.OutOfMemoryError("CUDA out of memory (test)")
        return super().sample_batch(loaded, prompt, generators, call, first_frame)


def test_a_job_halves_its_seed_batch_when_memory_runs_out(tmp_path):
    method = SeedColoured(max_batch=2)
    video = {"num_frames": 2, "height": 16, "width": 16, "fps": 8}
    sample_motion(method, {}, {"p0": "a prompt"}, [1, 2, 3, 4, 5], video, NO_SETTINGS, tmp_path / "out",
                  performance={"precision": "bf16", "batch_seeds": 5})
    assert method.calls[0] == ("load", torch.bfloat16)
    # 5 fails, then 2 + 2 + 1
    assert [n for kind, n in method.calls[1:]] == [5, 2, 2, 1]
    for seed in (1, 2, 3, 4, 5):
        frames = read_video(sample_file(tmp_path / "out", "p0", seed, "mp4"))
        assert abs(int(np.median(frames)) - 10 * seed) <= 2


def test_out_of_memory_with_one_video_is_not_hidden(tmp_path):
    method = SeedColoured(max_batch=0)
    with pytest.raises(torch.OutOfMemoryError):
        sample_motion(method, {}, {"p0": "a prompt"}, [1, 2], {"num_frames": 2, "height": 16, "width": 16, "fps": 8},
                      NO_SETTINGS, tmp_path / "out", performance={"batch_seeds": 2})
    assert [n for kind, n in method.calls[1:]] == [2, 1]
    assert not (tmp_path / "out").exists()


def test_the_sampling_job_uses_the_configured_batch_and_compile(tiny_model_dir, base_parts, tmp_path, monkeypatch):
    from PIL import Image

    from t2v_core.methods import get_method
    from t2v_core.video_unet import TemporalAdapter

    adapter_dir = tmp_path / "adapter"
    TemporalAdapter.from_unet(base_parts["unet"]).save_pretrained(adapter_dir)

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **options: compiled.append(options) or model)
    lamp = get_method("lamp")
    batches = []
    original = type(lamp).sample_batch
    monkeypatch.setattr(type(lamp), "sample_batch",
                        lambda self, loaded, prompt, generators, *a: batches.append(len(generators)) or
                        original(self, loaded, prompt, generators, *a))
    sampling = {"num_inference_steps": 2,
                "lamp": {"guidance_scale": 7.5, "shared_noise_alpha": 0.2, "adain": True, "adain_late_fraction": 0.6,
                         "histogram_matching": False}}
    video = {"num_frames": 3, "height": 32, "width": 32, "fps": 8}
    first = tmp_path / "first.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(first)
    sample_motion(lamp, {"base": tiny_model_dir / "base"}, {"p0": "a red square"}, [0, 1, 2], video, sampling,
                  tmp_path / "out", adapter_dir=adapter_dir, first_frames={"p0": first},
                  performance={"precision": "fp32", "compile": "on", "compile_min_videos": 1, "batch_seeds": 2})
    assert batches == [2, 1] and compiled == [{}]
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.mp4")) == ["seed0.mp4", "seed1.mp4", "seed2.mp4"]
