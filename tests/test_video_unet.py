"""The video UNet: equivalences and invariances on tiny models (CPU, seeded)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from t2v_core.jobs.finetune import finetune_motion
from t2v_core.video_unet import TemporalAdapter, TemporalConv2d, TemporalTransformerBlock, VideoUNet

from conftest import perturbed


def frames_through_2d_unet(unet, sample, timestep, text):
    b, c, f, h, w = sample.shape
    out = unet(sample[0].permute(1, 0, 2, 3), timestep, encoder_hidden_states=text.expand(f, -1, -1)).sample
    return out.permute(1, 0, 2, 3)[None]


@pytest.fixture
def inputs():
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 5, 8, 8, generator=generator)
    text = torch.randn(1, 77, 32, generator=generator)
    return sample, text


def make_video_unet(unet, init, first_frame_attention=True, seed=0):
    torch.manual_seed(seed)
    return VideoUNet(unet, TemporalAdapter.from_unet(unet, init=init), first_frame_attention).eval()


@torch.no_grad()
def test_identity_init_equals_2d_unet_frame_by_frame(base_parts, inputs):
    unet = base_parts["unet"]
    sample, text = inputs
    reference = frames_through_2d_unet(unet, sample, 10, text)
    video = make_video_unet(unet, "identity", first_frame_attention=False)
    torch.testing.assert_close(video(sample, 10, text), reference, rtol=0, atol=1e-6)


@torch.no_grad()
def test_lamp_reference_init_has_an_active_temporal_branch(base_parts, inputs):
    """LAMP's temporal attention keeps a default-initialised (non-zero) output bias."""
    unet = base_parts["unet"]
    sample, text = inputs
    reference = frames_through_2d_unet(unet, sample, 10, text)
    video = make_video_unet(unet, "reference", first_frame_attention=False)
    difference = (video(sample, 10, text) - reference).abs().max()
    assert difference > 1e-3


@torch.no_grad()
def test_first_frame_attention_frame_one_ignores_later_frames(base_parts, inputs):
    unet = base_parts["unet"]
    sample, text = inputs
    video = make_video_unet(unet, "identity")
    out = video(sample, 10, text)
    changed = sample.clone()
    changed[:, :, 1:] = torch.randn_like(changed[:, :, 1:])
    out_changed = video(changed, 10, text)
    torch.testing.assert_close(out_changed[:, :, 0], out[:, :, 0], rtol=0, atol=1e-6)
    # and frame 1 is exactly what the image model makes of it (it attends to itself)
    torch.testing.assert_close(out[:, :, 0], frames_through_2d_unet(unet, sample, 10, text)[:, :, 0], rtol=0, atol=1e-6)
    first_changed = sample.clone()
    first_changed[:, :, 0] += 1.0
    out_first = video(first_changed, 10, text)
    for f in range(sample.shape[2]):
        assert (out_first[:, :, f] - out[:, :, f]).abs().max() > 1e-4, f"frame {f + 1} ignored frame 1"


@torch.no_grad()
def test_temporal_convs_are_causal(base_parts, inputs):
    unet = base_parts["unet"]
    sample, text = inputs
    video = make_video_unet(unet, "reference", first_frame_attention=False)
    # make the temporal convs and gates non-trivial, and switch the temporal attention off
    # (it is bidirectional by design, as in LAMP)
    torch.manual_seed(1)
    for branch in video.adapter.temporal_convs.values():
        torch.nn.init.normal_(branch.conv.weight, std=0.05)
        torch.nn.init.normal_(branch.gate.weight, std=0.05)
    for temporal in video.adapter.temporal_attentions.values():
        torch.nn.init.zeros_(temporal.attn.to_out[0].bias)
    out = video(sample, 10, text)
    changed = sample.clone()
    changed[:, :, 3] += 1.0
    diff = (video(changed, 10, text) - out).abs().amax(dim=(0, 1, 3, 4))
    assert torch.all(diff[:3] == 0), diff
    assert torch.all(diff[3:] > 0), diff


def causal_temporal_conv_by_hand(branch, frames):
    """The gated branch written out per frame: t_f = b + sum_k W_k y_(f-K+1+k), zero before frame 1."""
    f, c, h, w = frames.shape
    weight, k = branch.conv.weight, branch.kernel_size
    t = []
    for index in range(f):
        total = branch.conv.bias[None, :, None, None].expand(1, c, h, w)
        for tap in range(k):
            source = index - (k - 1) + tap
            if source >= 0:
                total = total + torch.einsum("oi,ihw->ohw", weight[:, :, tap], frames[source])[None]
        t.append(total)
    t = torch.cat(t)
    return frames + torch.sigmoid(branch.gate(frames)) * t


def test_temporal_conv_branch_equals_the_formula_with_its_gradients():
    """The branch runs as one 3D convolution over a (B, C, F, H, W) view; values and gradients
    equal the per-frame formula (and so the permute-and-Conv1d form it replaced) in fp32."""
    from t2v_core.video_unet import TemporalConvBranch

    torch.manual_seed(0)
    branch = TemporalConvBranch(6)
    for p in branch.parameters():
        torch.nn.init.normal_(p, std=0.3)
    frames = torch.randn(5, 6, 4, 3)
    fast_in, slow_in = frames.clone().requires_grad_(), frames.clone().requires_grad_()
    fast = branch(fast_in, num_frames=5)
    fast.square().sum().backward()
    fast_grads = [p.grad.clone() for p in branch.parameters()]
    branch.zero_grad()
    slow = causal_temporal_conv_by_hand(branch, slow_in)
    slow.square().sum().backward()
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-5)
    torch.testing.assert_close(fast_in.grad, slow_in.grad, rtol=1e-5, atol=1e-5)
    for fast_grad, p in zip(fast_grads, branch.parameters()):
        torch.testing.assert_close(fast_grad, p.grad, rtol=1e-5, atol=1e-5)
    # two clips in one batch stay apart: the second clip's first frame sees no frame of the first
    two = branch(torch.cat([frames, frames]), num_frames=5).detach()
    torch.testing.assert_close(two[5:], fast.detach(), rtol=0, atol=1e-6)


def test_saved_adapter_layout_is_the_conv1d_layout(base_parts):
    """Adapters saved before the 3D-convolution form keep loading: the temporal conv's weight is
    still stored as a Conv1d's (out, in, k)."""
    adapter = TemporalAdapter.from_unet(base_parts["unet"])
    weights = {n: p.shape for n, p in adapter.state_dict().items() if n.endswith(".conv.weight")}
    assert weights and all(len(shape) == 3 and shape[0] == shape[1] and shape[2] == 3 for shape in weights.values())


def test_adapter_round_trips_bit_exactly(base_parts, tmp_path):
    torch.manual_seed(0)
    adapter = TemporalAdapter.from_unet(base_parts["unet"])
    for p in adapter.parameters():
        torch.nn.init.normal_(p)
    adapter.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "diffusion_pytorch_model.safetensors").exists()
    loaded = TemporalAdapter.from_pretrained(tmp_path / "adapter")
    original = adapter.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, original[key]), key
    assert loaded.config.init == adapter.config.init


def test_adapter_covers_every_2d_conv_but_transformer_projections(base_parts):
    unet = base_parts["unet"]
    adapter = TemporalAdapter.from_unet(unet)
    convs = {n for n, m in unet.named_modules() if isinstance(m, torch.nn.Conv2d)}
    wrapped = {k.replace("-", ".") for k in adapter.temporal_convs}
    assert wrapped == {n for n in convs if not n.endswith(("proj_in", "proj_out"))}
    assert {"conv_in", "conv_out"} <= wrapped
    assert any("conv_shortcut" in n for n in wrapped) and any("samplers" in n for n in wrapped)


def test_trainable_set_is_lamps(base_parts):
    adapter = TemporalAdapter.from_unet(base_parts["unet"])
    names = {n for n, _ in adapter.trainable_parameters()}
    assert all(("norm" not in n) for n in names)
    assert any(n.startswith("first_frame_queries.") for n in names)
    assert any(".gate." in n for n in names) and any(".conv." in n for n in names)
    assert any(".attn.to_q." in n for n in names)
    frozen = {n for n, _ in adapter.named_parameters()} - names
    assert frozen and all(".norm." in n for n in frozen)


def hooks_and_processors(unet):
    """What a video model could leave behind on a UNet: forward hooks and attention processors."""
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in unet.modules())
    return hooks, {name: type(p).__name__ for name, p in unet.attn_processors.items()}


@torch.no_grad()
def test_a_video_model_leaves_its_unet_the_image_model(base_parts, inputs):
    unet = base_parts["unet"]
    sample, text = inputs
    image_model = frames_through_2d_unet(unet, sample, 10, text)
    untouched = hooks_and_processors(unet)
    torch.manual_seed(0)
    video = VideoUNet(unet, perturbed(TemporalAdapter.from_unet(unet), 1)).eval()
    video_out = video(sample, 10, text)
    assert hooks_and_processors(unet) == untouched == (0, {n: "AttnProcessor2_0" for n in untouched[1]})
    assert not any(isinstance(m, (TemporalConv2d, TemporalTransformerBlock)) for m in unet.modules())
    # the temporal modules wrap layers of the video model's own copy; no hook anywhere
    wrapped = [n for n, m in video.unet.named_modules() if isinstance(m, (TemporalConv2d, TemporalTransformerBlock))]
    assert len(wrapped) == len(video.adapter.temporal_convs) + len(video.adapter.temporal_attentions)
    assert hooks_and_processors(video.unet)[0] == 0
    assert torch.equal(frames_through_2d_unet(unet, sample, 10, text), image_model)  # bit-identical
    assert (video_out - image_model).abs().max() > 1e-3  # and the video model is not the image model
    # the copy shares the weights: no second copy of the UNet in memory
    assert video.unet.conv_in.weight.data_ptr() == unet.conv_in.weight.data_ptr()
    assert video.unet.conv_in.base_layer.weight is video.unet.conv_in.weight  # read through the wrapper


@torch.no_grad()
def test_two_video_models_on_one_unet_each_give_what_they_give_alone(base_parts, inputs):
    unet = base_parts["unet"]
    sample, text = inputs
    torch.manual_seed(0)
    adapters = [perturbed(TemporalAdapter.from_unet(unet), seed) for seed in (1, 2)]
    alone = []
    for adapter in adapters:
        alone.append(VideoUNet(unet, adapter).eval()(sample, 10, text))
    first, second = (VideoUNet(unet, adapter).eval() for adapter in adapters)
    assert torch.equal(first(sample, 10, text), alone[0])
    assert torch.equal(second(sample, 10, text), alone[1])
    assert (alone[0] - alone[1]).abs().max() > 1e-3  # two different adapters, two different models


def test_training_a_video_model_leaves_the_unet_usable_by_other_pipelines(tiny_model_dir, tmp_path):
    """As measured on a GPU before the video model owned its copy: after a fine-tuning on the
    shared components, diffusers' Text2Video-Zero on the same UNet failed with a shape error."""
    from t2v_core.data.synthetic import synthesize_motion_clips
    from t2v_core.methods import get_training
    from t2v_core.methods.text2video_zero import sample_text2video_zero_diffusers
    from t2v_core.models.loading import load_base_components

    kwargs = dict(num_frames=3, height=32, width=32, num_inference_steps=4, guidance_scale=7.5, t0=1, t1=2,
                  motion_field_strength_x=4, motion_field_strength_y=4)
    fresh = sample_text2video_zero_diffusers(load_base_components(tiny_model_dir / "base"), "a red square",
                                   generator=torch.Generator().manual_seed(0), **kwargs)
    parts = load_base_components(tiny_model_dir / "base")
    clips = synthesize_motion_clips(tmp_path / "clips", "shape_right", "square", 0, 2, 4, 32, 32)
    finetune = {"steps": 2, "learning_rate": 1e-3, "checkpoint_every": 10, "seed": 0, "random_flip": False,
                "mixed_precision": "no", "gradient_checkpointing": False, "save_dtype": "fp32",
                "lamp": {"init": "reference"}}
    processors = hooks_and_processors(parts["unet"])
    finetune_motion(get_training("lamp"), parts, clips, "a square", tmp_path / "adapter", tmp_path / "ckpt",
                    {"num_frames": 3, "height": 32, "width": 32}, finetune)
    assert (tmp_path / "adapter" / "config.json").exists()
    assert hooks_and_processors(parts["unet"]) == processors
    after = sample_text2video_zero_diffusers(parts, "a red square", generator=torch.Generator().manual_seed(0), **kwargs)
    np.testing.assert_array_equal(after, fresh)


BEFORE_WRAPPING = Path(__file__).parent / "data" / "adapter_before_wrapping"


def test_the_wrapped_video_model_computes_what_the_hooked_one_did(base_parts):
    """``data/adapter_before_wrapping``: an adapter for the tiny test UNet (``TemporalAdapter.
    from_unet`` with ``torch.manual_seed(0)``, then ``perturbed(..., 1)``), saved by the video
    model of before issue 33 (forward hooks, the gate as a 3x3 Conv2d), with that model's output
    on two clips (timesteps 10 and 500) and the gradients of ``output.square().mean()`` with
    respect to the trainable parameters. The wrapped model loads it and gives both again."""
    from safetensors.torch import load_file

    expected = load_file(BEFORE_WRAPPING / "expected.safetensors")
    adapter = TemporalAdapter.from_pretrained(BEFORE_WRAPPING / "adapter")
    model = VideoUNet(base_parts["unet"], adapter)
    adapter.requires_grad_(False)
    trained = dict(adapter.trainable_parameters())
    for parameter in trained.values():
        parameter.requires_grad_(True)
    output = model(expected["sample"], torch.tensor([10, 500]), expected["text"])
    output.square().mean().backward()
    torch.testing.assert_close(output, expected["output"], rtol=0, atol=1e-5)
    assert expected["output"].abs().max() > 0.5  # a non-trivial output, not zeros
    assert sorted(trained) == sorted(k.removeprefix("grad.") for k in expected if k.startswith("grad."))
    for name, parameter in trained.items():
        torch.testing.assert_close(parameter.grad, expected[f"grad.{name}"], rtol=1e-5, atol=1e-5, msg=name)
