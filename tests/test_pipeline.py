"""A trained adapter outside the workflow: FirstFrameVideoPipeline saved, loaded and sampled as
the README shows, equal to what the workflow's LAMP and Ours sample (tiny random models)."""

import json

import numpy as np
import pytest
import torch

from t2v_core.methods import get_method
from t2v_core.pipeline import FirstFrameVideoPipeline
from t2v_core.sampling import SamplingError, match_histograms_to_first_frame
from t2v_core.video_unet import TemporalAdapter

from conftest import perturbed

PROMPT = "a red square moves right"
SIZE = dict(num_frames=3, height=32, width=32, num_inference_steps=3, guidance_scale=7.5)


@pytest.fixture
def adapter_dir(base_parts, tmp_path):
    """A saved adapter whose temporal modules do something (an untrained one adds ~0)."""
    torch.manual_seed(0)
    adapter = perturbed(TemporalAdapter.from_unet(base_parts["unet"]), 1)
    adapter.save_pretrained(tmp_path / "adapter")
    return tmp_path / "adapter"


def first_frame(seed=0):
    return (np.random.default_rng(seed).random((32, 32, 3)) * 255).astype(np.uint8)


def frames_of(pipe, seed=3, **kwargs):
    pipe.set_progress_bar_config(disable=True)
    return pipe(PROMPT, generator=torch.Generator().manual_seed(seed), **SIZE, **kwargs).frames


def test_readme_lines_load_base_and_adapter_and_sample(tiny_model_dir, adapter_dir):
    adapter = TemporalAdapter.from_pretrained(adapter_dir)
    pipe = FirstFrameVideoPipeline.from_pretrained(tiny_model_dir / "base", adapter=adapter)
    frames = frames_of(pipe, first_frame=first_frame())
    assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[2])


def test_save_and_load_round_trip_gives_the_same_video(tiny_model_dir, adapter_dir, tmp_path):
    adapter = TemporalAdapter.from_pretrained(adapter_dir)
    pipe = FirstFrameVideoPipeline.from_pretrained(tiny_model_dir / "base", adapter=adapter)
    pipe.save_pretrained(tmp_path / "pipeline")
    index = json.loads((tmp_path / "pipeline" / "model_index.json").read_text())
    assert index["_class_name"] == "FirstFrameVideoPipeline"
    assert index["adapter"] == ["t2v_core.video_unet", "TemporalAdapter"]
    assert (tmp_path / "pipeline" / "adapter" / "diffusion_pytorch_model.safetensors").exists()
    loaded = FirstFrameVideoPipeline.from_pretrained(tmp_path / "pipeline")
    for key, value in loaded.adapter.state_dict().items():
        assert torch.equal(value, adapter.state_dict()[key]), key
    np.testing.assert_array_equal(frames_of(loaded, first_frame=first_frame()),
                                  frames_of(pipe, first_frame=first_frame()))


@pytest.mark.parametrize("method", ["lamp", "ours_noise"])
@pytest.mark.parametrize("histogram_matching", [False, True])
def test_the_workflows_sampler_is_the_pipeline(tiny_model_dir, adapter_dir, method, histogram_matching):
    """What the table measures for LAMP and Ours is what a user gets from the pipeline (then,
    with histogram_matching, LAMP's post-processing of its inference script)."""
    registered = get_method(method)
    loaded = registered.load({"base": tiny_model_dir / "base"}, adapter_dir, "cpu")
    sampling = {"num_inference_steps": 3, method: {"guidance_scale": 7.5, "shared_noise_alpha": 0.2, "adain": True,
                                                   "adain_late_fraction": 0.62,
                                                   "histogram_matching": histogram_matching}}
    video = {"num_frames": 3, "height": 32, "width": 32}
    image = first_frame() if registered.needs_first_frame_image else None
    ours = registered.sample(loaded, PROMPT, torch.Generator().manual_seed(3), registered.resolve(video, sampling), image)
    pipe = FirstFrameVideoPipeline.from_pretrained(tiny_model_dir / "base",
                                                   adapter=TemporalAdapter.from_pretrained(adapter_dir))
    expected = frames_of(pipe, first_frame=image)
    if histogram_matching:
        expected = match_histograms_to_first_frame(expected)
        assert not np.array_equal(ours[1:], frames_of(pipe, first_frame=image)[1:])  # it did something
    np.testing.assert_array_equal(ours, expected)
    assert not np.array_equal(ours, frames_of(pipe, seed=4, first_frame=image))  # the seed counts


def test_bad_inputs_are_named_before_any_work(tiny_model_dir, adapter_dir):
    pipe = FirstFrameVideoPipeline.from_pretrained(tiny_model_dir / "base",
                                                   adapter=TemporalAdapter.from_pretrained(adapter_dir))
    with pytest.raises(SamplingError, match=r"first frame: image is 16x32 \(WxH\), expected 32x32"):
        frames_of(pipe, first_frame=first_frame()[:, :16])
    with pytest.raises(SamplingError, match="one string"):
        pipe([PROMPT, PROMPT], **SIZE)
    with pytest.raises(SamplingError, match="multiples of 8"):
        pipe(PROMPT, num_frames=3, height=30, width=32)


def test_a_stable_diffusion_folder_with_pndm_samples_with_ddim(tiny_model_dir, adapter_dir, tmp_path):
    """Stable Diffusion's own folder names PNDM; LAMP (and the workflow) sample with DDIM."""
    import shutil

    from diffusers import PNDMScheduler

    folder = tmp_path / "sd"
    shutil.copytree(tiny_model_dir / "base", folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", "PNDMScheduler"]
    (folder / "model_index.json").write_text(json.dumps(index))
    PNDMScheduler.from_pretrained(folder, subfolder="scheduler").save_pretrained(folder / "scheduler")
    adapter = TemporalAdapter.from_pretrained(adapter_dir)
    pipe = FirstFrameVideoPipeline.from_pretrained(folder, adapter=adapter)
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    reference = FirstFrameVideoPipeline.from_pretrained(tiny_model_dir / "base", adapter=adapter)
    np.testing.assert_array_equal(frames_of(pipe), frames_of(reference))
