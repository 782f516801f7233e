"""The shortcuts that the benchmark suite measures compute the same thing as the reference:
cached VAE posteriors, the batched classifier-free-guidance call, SDPA attention, and the
benchmark's reference-style fine-tuning step against ours (tiny random-weight models)."""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from benchmarks.finetune_bench import PROMPT, our_loss, reference_loss, set_attention, setup, step_inputs
from t2v_core.sampling import encode_prompt
from t2v_core.training.data import encode_clips
from t2v_core.video_unet import FirstFrameAttnProcessor, TemporalAdapter, VideoUNet

ATOL = 1e-5


def _frames(n=10, size=64, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _perturbed_video_unet(unet, seed=0):
    """A VideoUNet whose temporal branches are not zero (they start at zero untrained)."""
    torch.manual_seed(seed)
    adapter = TemporalAdapter.from_unet(unet)
    with torch.no_grad():
        for p in adapter.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return VideoUNet(unet, adapter).eval()


def test_cached_posterior_equals_fresh_vae_encoding(base_parts):
    vae = base_parts["vae"]
    scale = vae.config.scaling_factor
    frames = _frames(10)  # > encode_clips' batch of 8: two chunks concatenated
    cached = encode_clips(vae, [frames], "cpu")[0]  # (2, C, F, h, w)
    with torch.no_grad():
        posterior = vae.encode(frames).latent_dist
    mean = (posterior.mean * scale).permute(1, 0, 2, 3)
    std = (posterior.std * scale).permute(1, 0, 2, 3)
    assert cached.shape == (2, *mean.shape)
    torch.testing.assert_close(cached[0], mean, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(cached[1], std, atol=ATOL, rtol=1e-5)
    assert float(std.std()) > 0  # a real spread, not a constant
    # mean + std * eps from the cache = the posterior's sample() with the same eps
    sample = posterior.sample(torch.Generator().manual_seed(3)) * scale
    eps = torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(3))
    from_cache = cached[0] + cached[1] * eps.permute(1, 0, 2, 3)
    torch.testing.assert_close(from_cache, sample.permute(1, 0, 2, 3), atol=ATOL, rtol=1e-5)
    other = cached[0] + cached[1] * torch.randn_like(cached[1])
    assert not torch.allclose(other, sample.permute(1, 0, 2, 3), atol=ATOL)


def test_batched_cfg_call_equals_two_calls(base_parts):
    model = _perturbed_video_unet(base_parts["unet"])
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 5, 16, 16, generator=g)
    text = encode_prompt(base_parts["text_encoder"], base_parts["tokenizer"], ["", PROMPT], "cpu")
    t = torch.tensor(700)
    with torch.no_grad():
        uncond_b, cond_b = model(torch.cat([x, x]), t, text).chunk(2)
        uncond = model(x, t, text[:1])
        cond = model(x, t, text[1:])
    assert not torch.allclose(uncond, cond, atol=1e-3)  # the prompt matters
    torch.testing.assert_close(uncond_b, uncond, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(cond_b, cond, atol=ATOL, rtol=1e-5)
    guided = uncond_b + 12.5 * (cond_b - uncond_b)
    torch.testing.assert_close(guided, uncond + 12.5 * (cond - uncond), atol=1e-4, rtol=1e-5)


def test_sdpa_attention_equals_classic_attention(base_parts):
    unet = base_parts["unet"]
    processors = unet.attn_processors
    assert processors and all(isinstance(p, AttnProcessor2_0) for p in processors.values())
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, 16, 16, generator=g)
    text = torch.randn(3, 77, unet.config.cross_attention_dim, generator=g)
    t = torch.tensor([10, 500, 990])
    with torch.no_grad():
        sdpa = unet(x, t, encoder_hidden_states=text).sample
        unet.set_attn_processor(AttnProcessor())
        try:
            classic = unet(x, t, encoder_hidden_states=text).sample
        finally:
            unet.set_attn_processor(AttnProcessor2_0())
    torch.testing.assert_close(sdpa, classic, atol=ATOL, rtol=1e-5)


def test_folded_first_frame_attention_equals_keys_copied_per_frame(base_parts):
    """The sampling section's reference path: frame 1's keys copied to every frame, one
    attention per frame; ours: a clip's frames as one query sequence. Same numbers."""
    from benchmarks.common import RepeatedKeysFirstFrameAttnProcessor, use_repeated_keys_attention

    ours = _perturbed_video_unet(base_parts["unet"])
    reference = _perturbed_video_unet(base_parts["unet"])
    use_repeated_keys_attention(reference)
    assert any(isinstance(getattr(m, "processor", None), RepeatedKeysFirstFrameAttnProcessor)
               for m in reference.unet.modules())
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 5, 16, 16, generator=g)
    text = torch.randn(2, 77, base_parts["unet"].config.cross_attention_dim, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, 300, text), reference(x, 300, text), atol=ATOL, rtol=1e-5)


def test_reference_style_step_equals_our_step(base_parts):
    model, _, _, frames = setup(base_parts, 4, 64, 64, "cpu")
    model.eval()  # a deterministic forward (no dropout in these models; eval for certainty)
    with torch.no_grad():
        for p in model.adapter.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    cached = encode_clips(base_parts["vae"], [frames], "cpu")[0]
    text = encode_prompt(base_parts["text_encoder"], base_parts["tokenizer"], [PROMPT], "cpu")
    noise, timestep, eps = step_inputs(cached, base_parts["scheduler"], "cpu", torch.Generator().manual_seed(5))
    timestep = torch.tensor([600])
    set_attention(model, classic=False)
    ours = our_loss(model, base_parts["scheduler"], cached, text, noise, timestep, eps)
    set_attention(model, classic=True)
    assert any(isinstance(p, AttnProcessor) for p in model.unet.attn_processors.values())
    assert any(isinstance(p, FirstFrameAttnProcessor) for p in model.unet.attn_processors.values())
    reference = reference_loss(model, base_parts, frames, PROMPT, noise, timestep, eps)
    assert ours.item() > 0
    torch.testing.assert_close(ours, reference, atol=ATOL, rtol=1e-5)
    # and the gradients of the trainable parameters agree
    params = [p for _, p in model.adapter.trainable_parameters()]
    grads_ref = torch.autograd.grad(reference, params, allow_unused=True)
    set_attention(model, classic=False)
    ours = our_loss(model, base_parts["scheduler"], cached, text, noise, timestep, eps)
    grads_ours = torch.autograd.grad(ours, params, allow_unused=True)
    for a, b in zip(grads_ours, grads_ref):
        if a is None:
            assert b is None
            continue
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    # a different posterior sample gives a different loss: the comparison is not vacuous
    other = our_loss(model, base_parts["scheduler"], cached, text, noise, timestep, torch.randn_like(eps))
    assert abs(other.item() - ours.item()) > 1e-6


def test_chunked_vae_decode_equals_one_batch(base_parts):
    from t2v_core.sampling import decode_latents

    vae = base_parts["vae"]
    latents = torch.randn(1, 4, 5, 8, 8, generator=torch.Generator().manual_seed(4))  # SD's factor 8: 64x64
    chunked = decode_latents(vae, latents, chunk=2)  # chunks of 2, 2 and 1 frames
    whole = decode_latents(vae, latents, chunk=5)
    assert chunked.shape == (5, 64, 64, 3) and chunked.dtype == whole.dtype
    assert int(chunked.astype(int).std()) > 0  # real images, not a constant
    # uint8 after rounding: equal up to one level where a value sits on a rounding edge
    assert abs(chunked.astype(int) - whole.astype(int)).max() <= 1
    assert (chunked != whole).mean() < 1e-3


def test_the_toy_step_section_counts_the_adapters_flops_and_holds_them_against_the_peak():
    """The CPU suite's toy fine-tuning step: the video step's FLOPs are the 2D step's plus the
    adapter's (more, by LAMP's temporal convs after every 2D conv), each step's achieved FLOP/s
    is its FLOPs over its time, and the summary row says it against the one-thread GEMM peak."""
    from benchmarks.__main__ import markdown
    from benchmarks.toy_step import bench_toy_step

    result = bench_toy_step("cpu", repeats=3, warmup=1)
    assert result["threads"] == 1 and torch.get_num_threads() >= 1
    assert 1.2 < result["flop_ratio"] < 2.0 and result["flops"]["plain_2d"] > 1e9
    for name in ("video", "plain_2d"):
        assert result["flops_per_s"][name] == result["flops"][name] / result["step_s"][name]
        assert result["fraction_of_peak"][name] == result["flops_per_s"][name] / result["gemm_peak_flops_per_s"]
    text = markdown({"device": {"name": "cpu", "device": "cpu", "cpu_threads": 1, "torch": "x", "python": "y"},
                     "size": "full", "wall_s": 1.0, "results": {"toy_step": result}})
    row = next(line for line in text.splitlines() if line.startswith("| Toy fine-tuning step"))
    assert f"{result['flops']['video'] / 1e9:.2f} GFLOP" in row and "GEMM peak at that thread count" in row
    assert f"video/2D time {result['time_ratio']:.2f}x" in row
