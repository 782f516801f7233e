"""Sampling: shared noise, first-frame conditioning, AdaIN schedule, Text2Video-Zero wrapper."""

import numpy as np
import pytest
import torch
from PIL import Image

from t2v_core.pipeline import FirstFrameVideoPipeline
from t2v_core.sampling import (
    SamplingError, encode_first_frame, lamp_adain_final, lamp_adain_step, load_first_frame,
    match_histograms_to_first_frame, match_statistics, shared_noise,
)
from t2v_core.text2video_zero_pipeline import Text2VideoZeroPipeline, translate_latents
from t2v_core.video_unet import TemporalAdapter


def untrained_pipeline(parts) -> FirstFrameVideoPipeline:
    torch.manual_seed(0)
    pipe = FirstFrameVideoPipeline(**parts, adapter=TemporalAdapter.from_unet(parts["unet"]))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_shared_noise_mixing_is_exact():
    shape = (1, 4, 5, 3, 3)
    mixed = shared_noise(shape, 0.2, torch.Generator().manual_seed(7), "cpu")
    raw = torch.randn(shape, generator=torch.Generator().manual_seed(7))
    for f in range(5):
        torch.testing.assert_close(mixed[:, :, f], 0.2 * raw[:, :, 0] + 0.8 * raw[:, :, f], rtol=0, atol=1e-7)
    torch.testing.assert_close(mixed[:, :, 0], raw[:, :, 0])


def stats(x):
    flat = x.flatten(-2)
    return flat.mean(-1), flat.std(-1)


def test_adain_schedule():
    torch.manual_seed(0)
    latents = torch.randn(1, 4, 4, 6, 6) * torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 4, 1, 1)
    early = lamp_adain_step(latents, late=False)
    torch.testing.assert_close(early[:, :, :2], latents[:, :, :2])
    for f in (2, 3):
        for got, want in zip(stats(early[:, :, f]), stats(latents[:, :, 1])):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    late = lamp_adain_step(latents, late=True)
    torch.testing.assert_close(late[:, :, 0], latents[:, :, 0])
    for f in (1, 2, 3):
        for got, want in zip(stats(late[:, :, f]), stats(latents[:, :, 0])):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    final = lamp_adain_final(latents)
    torch.testing.assert_close(final[:, :, 0], latents[:, :, 0])
    torch.testing.assert_close(stats(final[:, :, 3])[1], stats(latents[:, :, 0])[1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(match_statistics(latents, latents), latents, atol=1e-5, rtol=1e-5)


def test_first_frame_latent_is_unchanged_in_latents_mode(base_parts):
    pipe = untrained_pipeline(base_parts)
    image = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    latents = pipe("a red square", first_frame=image, num_frames=4, height=32, width=32, num_inference_steps=3,
                   guidance_scale=7.5, generator=torch.Generator().manual_seed(3), output_type="latent").frames
    generator = torch.Generator().manual_seed(3)
    torch.randn(latents.shape, generator=generator)  # the initial noise is drawn first
    expected = encode_first_frame(base_parts["vae"], image, generator, "cpu")
    torch.testing.assert_close(latents[:, :, 0], expected, rtol=0, atol=0)
    assert (latents[:, :, 1:] - expected[:, :, None]).abs().amax() > 1e-3


def test_noise_mode_denoises_the_first_frame_too(base_parts):
    pipe = untrained_pipeline(base_parts)
    kwargs = dict(num_frames=3, height=32, width=32, num_inference_steps=3, guidance_scale=7.5)
    a = pipe("a red square", generator=torch.Generator().manual_seed(3), output_type="latent", **kwargs).frames
    b = pipe("a red square", generator=torch.Generator().manual_seed(4), output_type="latent", **kwargs).frames
    assert (a[:, :, 0] - b[:, :, 0]).abs().amax() > 1e-3
    frames = pipe("a red square", generator=torch.Generator().manual_seed(3), **kwargs).frames
    assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.uint8


def test_first_frame_of_another_aspect_is_named(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (100, 20)).save(path)
    with pytest.raises(SamplingError, match="wide.png"):
        load_first_frame(path, 32, 32)
    Image.new("RGB", (64, 64), (10, 20, 30)).save(tmp_path / "big.png")
    image = load_first_frame(tmp_path / "big.png", 32, 32)
    assert image.shape == (32, 32, 3) and tuple(image[5, 5]) == (10, 20, 30)


def test_a_first_frame_of_the_right_size_is_a_writable_array(tmp_path):
    """LAMP's benchmark frames resized to the video's size already are read as PIL's read-only
    buffer, and torch.from_numpy warned in every sampling job's log (found by the rehearsal)."""
    import warnings

    import torch

    Image.new("RGB", (32, 32), (10, 20, 30)).save(tmp_path / "same.png")
    image = load_first_frame(tmp_path / "same.png", 32, 32)
    assert image.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.from_numpy(image)[0, 0].tolist() == [10, 20, 30]


T2VZ = dict(num_frames=4, height=64, width=64, num_inference_steps=6, guidance_scale=7.5, t0=2, t1=4,
            motion_field_strength_x=40, motion_field_strength_y=-20)


def our_text2video_zero(parts):
    pipe = Text2VideoZeroPipeline(**parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_our_text2video_zero_equals_diffusers_pipeline(tiny_model_dir):
    from diffusers import TextToVideoZeroPipeline as DiffusersPipeline

    from t2v_core.models.loading import load_base_components

    parts = load_base_components(tiny_model_dir / "base")
    processors = dict(parts["unet"].attn_processors)
    ours = our_text2video_zero(parts)("a red square", generator=torch.Generator().manual_seed(5), **T2VZ).frames
    # the given UNet keeps its own attention processors (ours attends across frames on a copy)
    assert parts["unet"].attn_processors == processors
    pipe = DiffusersPipeline.from_pretrained(tiny_model_dir / "base", safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)
    pipe.scheduler = load_base_components(tiny_model_dir / "base")["scheduler"]
    pipe.set_progress_bar_config(disable=True)
    reference = pipe(prompt="a red square", video_length=4, generator=torch.Generator().manual_seed(5),
                     output_type="np", **{k: v for k, v in T2VZ.items() if k != "num_frames"}).images
    reference = (np.clip(reference, 0, 1) * 255).round().astype(np.uint8)
    assert ours.shape == reference.shape == (4, 64, 64, 3)
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1
    # the frames move: the test would not see a broken warp otherwise
    assert np.abs(ours[0].astype(int) - ours[3].astype(int)).mean() > 5


def test_translation_warp_by_hand():
    latents = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    # a latent pixel of an 8x8 latent is 64 pixels of the 512 grid: frame 1 one pixel right,
    # frame 2 two pixels down; the border pixel reflects onto itself
    warped = translate_latents(latents, torch.tensor([64.0, 0.0]), torch.tensor([0.0, 128.0]))
    torch.testing.assert_close(warped[0, 0], latents[0, 0][:, [1, 2, 3, 4, 5, 6, 7, 7]], rtol=0, atol=0)
    torch.testing.assert_close(warped[1, 0], latents[1, 0][[2, 3, 4, 5, 6, 7, 7, 6]], rtol=0, atol=0)


@pytest.mark.parametrize("pipeline", ["first_frame", "text2video_zero"])
def test_a_seed_gives_the_same_video_alone_or_in_a_batch(base_parts, pipeline):
    if pipeline == "first_frame":
        pipe = untrained_pipeline(base_parts)
        kwargs = dict(first_frame=(np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8),
                      num_frames=3, height=32, width=32, num_inference_steps=3, guidance_scale=7.5)
    else:
        pipe, kwargs = our_text2video_zero(base_parts), dict(T2VZ, height=32, width=32)
    alone = [pipe("a red square", generator=torch.Generator().manual_seed(seed), **kwargs).frames for seed in (3, 4)]
    batch = pipe("a red square", generator=[torch.Generator().manual_seed(seed) for seed in (3, 4)], **kwargs).frames
    assert batch.shape == (2, *alone[0].shape)
    for one, batched in zip(alone, batch):
        assert np.abs(one.astype(int) - batched.astype(int)).max() <= 1
    assert np.abs(alone[0].astype(int) - alone[1].astype(int)).max() > 10


@pytest.mark.parametrize("pipeline", ["first_frame", "text2video_zero"])
def test_bf16_sampling_follows_fp32(tiny_model_dir, pipeline):
    from t2v_core.models.loading import load_base_components

    videos = []
    for dtype in (torch.float32, torch.bfloat16):
        parts = load_base_components(tiny_model_dir / "base", dtype=dtype)
        if pipeline == "first_frame":
            pipe = untrained_pipeline(parts)
            pipe.adapter.to(dtype)
            kwargs = dict(num_frames=3, height=32, width=32, num_inference_steps=3, guidance_scale=7.5)
        else:
            pipe, kwargs = our_text2video_zero(parts), dict(T2VZ, height=32, width=32)
        assert pipe.video_unet.unet.dtype == dtype
        videos.append(pipe("a red square", generator=torch.Generator().manual_seed(3), **kwargs).frames.astype(int))
    fp32, bf16 = videos
    # bf16 rounds the UNet's activations (8 bits of mantissa): the video stays the same video
    assert np.abs(fp32 - bf16).mean() < 2.0
    assert not np.array_equal(fp32, bf16)


def test_a_compiled_denoiser_gives_the_same_video(base_parts):
    pipe = our_text2video_zero(base_parts)
    kwargs = dict(T2VZ, height=32, width=32)
    plain = pipe("a red square", generator=torch.Generator().manual_seed(3), **kwargs).frames
    # the "eager" backend traces the model with TorchDynamo (what torch.compile does to our
    # hooks and processors) without the minutes of code generation
    pipe.compile_options = {"backend": "eager"}
    assert isinstance(pipe.video_unet, torch._dynamo.eval_frame.OptimizedModule)
    compiled = pipe("a red square", generator=torch.Generator().manual_seed(3), **kwargs).frames
    assert np.abs(plain.astype(int) - compiled.astype(int)).max() <= 1


def test_text2video_zero_suffix_as_the_original_code_appends_it():
    from t2v_core.methods.text2video_zero import with_suffix

    suffix = "high quality, HD, 8K, trending on artstation, high focus, dramatic lighting"
    assert with_suffix("a horse runs.", suffix) == f"a horse runs, {suffix}"
    assert with_suffix("a horse runs , ", suffix) == f"a horse runs, {suffix}"
    assert with_suffix("a horse runs", "") == "a horse runs"


@pytest.mark.parametrize("scaling, frames, expected_x, last_frame_shift", [
    ("per_frame", 8, 12.0, 7 * 12 / 512),    # the original's 8 frames: 16% of the width
    ("per_frame", 16, 12.0, 15 * 12 / 512),  # 16 frames at the original's step: 35%
    ("per_video", 16, 5.6, 7 * 12 / 512),    # 12 x 7/15: the 16th frame ends where the original's 8th did
    ("per_video", 8, 12.0, 7 * 12 / 512),
])
def test_text2video_zero_motion_field_scaling(scaling, frames, expected_x, last_frame_shift):
    from t2v_core.methods.text2video_zero import motion_field_strengths

    x, y = motion_field_strengths(12, 6, scaling, frames)
    assert x == pytest.approx(expected_x) and y == pytest.approx(expected_x / 2)
    assert (frames - 1) * x / 512 == pytest.approx(last_frame_shift)


@pytest.mark.parametrize("implementation", ["ours", "diffusers"])
def test_text2video_zero_method_passes_the_suffixed_prompt_and_scaled_field(monkeypatch, implementation):
    from t2v_core.methods import text2video_zero

    seen = {}

    def record(prompt, generator, **kw):
        seen.update(kw, prompt=prompt, implementation="diffusers" if "device" in kw else "ours")
        return type("Output", (), {"frames": [np.zeros(1)] * len(generator if isinstance(generator, list) else [1])})

    monkeypatch.setattr(text2video_zero, "sample_text2video_zero_diffusers", lambda parts, prompt, **kw: record(prompt, **kw))
    settings = {"guidance_scale": 7.5, "t0": 2, "t1": 3, "motion_field_strength_x": 12, "motion_field_strength_y": 0,
                "motion_field_scaling": "per_video", "prompt_suffix": "HD", "implementation": implementation}
    loaded = type("Pipeline", (), {"components": {"unet": type("UNet", (), {"device": "cpu"})()},
                                   "__call__": lambda self, prompt, **kw: record(prompt, **kw)})()
    method = text2video_zero.TEXT2VIDEO_ZERO
    method.sample(loaded, "a red square.", None, method.resolve({"num_frames": 15, "height": 32, "width": 32},
                                                                {"num_inference_steps": 5, "text2video_zero": settings}))
    assert seen["implementation"] == implementation
    assert seen["prompt"] == "a red square, HD"
    assert seen["motion_field_strength_x"] == pytest.approx(6.0) and seen["motion_field_strength_y"] == 0


def test_a_prompt_longer_than_the_text_encoder_reads_is_warned_about_for_lamp_and_ours(base_parts, caplog):
    pipe = untrained_pipeline(base_parts)
    long = "a red square " + " ".join(["slowly"] * 80) + " moves right"
    kwargs = dict(first_frame=None, num_frames=2, height=32, width=32, num_inference_steps=2, guidance_scale=7.5,
                  generator=torch.Generator().manual_seed(0), output_type="latent")
    with caplog.at_level("WARNING", logger="t2v_core.sampling"):
        pipe("a red square moves right", **kwargs)
        assert not caplog.records
        pipe(long, **kwargs)
    (record,) = [r for r in caplog.records if r.name == "t2v_core.sampling"]
    assert f"prompt {long!r} is 87 tokens long, the text encoder reads 77" in record.getMessage()
    assert record.getMessage().endswith("slowly moves right' is ignored")


def test_histogram_matching_by_hand():
    """Frame 2's values 5, 6, 7, 8 (one pixel each) take the first frame's 0, 0, 10, 20: the
    smallest value whose cumulative count in frame 1 reaches theirs in frame 2 (1, 2, 3, 4)."""
    first = np.array([[0, 0], [10, 20]], dtype=np.uint8)
    second = np.array([[5, 6], [7, 8]], dtype=np.uint8)
    frames = np.stack([first, second])[..., None].repeat(3, axis=-1)
    frames[1, ..., 2] = 9  # a flat channel: every pixel reaches the whole count -> the maximum, 20
    matched = match_histograms_to_first_frame(frames)
    np.testing.assert_array_equal(matched[0], frames[0])
    np.testing.assert_array_equal(matched[1, ..., 0], [[0, 0], [10, 20]])
    np.testing.assert_array_equal(matched[1, ..., 1], [[0, 0], [10, 20]])
    np.testing.assert_array_equal(matched[1, ..., 2], [[20, 20], [20, 20]])


def lamp_inference_script_formula(reference, frame):
    """The formula of LAMP's inference script written out: densities of 256 unit bins, their
    running sums, and for each value of the frame the first reference value whose running sum
    is not below the frame's (numpy's searchsorted, side 'left')."""
    out = np.zeros_like(frame)
    for channel in range(3):
        ref_density, _ = np.histogram(reference[..., channel], bins=256, range=(0, 256), density=True)
        frame_density, _ = np.histogram(frame[..., channel], bins=256, range=(0, 256), density=True)
        lookup = np.searchsorted(np.cumsum(ref_density), np.cumsum(frame_density), side="left")
        out[..., channel] = np.clip(lookup, 0, 255)[frame[..., channel]]
    return out


def test_histogram_matching_equals_lamps_formula_on_real_looking_frames():
    rng = np.random.default_rng(0)
    # a dark first frame and a brighter, more contrasted later frame (as a drifting video's)
    first = np.clip(rng.normal(70, 20, (32, 48, 3)), 0, 255).astype(np.uint8)
    later = np.clip(rng.normal(140, 45, (32, 48, 3)), 0, 255).astype(np.uint8)
    matched = match_histograms_to_first_frame(np.stack([first, later, first]))
    reference = lamp_inference_script_formula(first, later)
    # Equal wherever the running counts of a value do not tie exactly with the first frame's;
    # at a tie the script's float sums round either way (at the top, a sum just under 1 sends
    # the frame's brightest value to 255), where integer counts give the tied value itself.
    for channel in range(3):
        first_counts = np.cumsum(np.bincount(first[..., channel].ravel(), minlength=256))
        later_counts = np.cumsum(np.bincount(later[..., channel].ravel(), minlength=256))
        tied = np.isin(later_counts, first_counts)[later[..., channel]]
        assert tied.mean() < 0.2
        np.testing.assert_array_equal(matched[1, ..., channel][~tied], reference[..., channel][~tied])
        assert np.all(first_counts[matched[1, ..., channel][tied]] == later_counts[later[..., channel][tied]])
    np.testing.assert_array_equal(matched[2], first)  # a frame with the first frame's histogram keeps it
    assert abs(matched[1].mean() - first.mean()) < 1.0 < abs(later.mean() - first.mean())
    with pytest.raises(SamplingError, match="uint8"):
        match_histograms_to_first_frame(np.stack([first, later]).astype(np.float32))
