"""The video UNet: equivalences and invariances on tiny models (CPU, seeded)."""

import pytest
import torch

from t2v_core.video_unet import TemporalAdapter, VideoUNet


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
