"""Fine-tuning: first-frame conditioning, mask weighting, trainable set, resume, bad input."""

import numpy as np
import pytest
import torch

from t2v_core.config import validate_config
from t2v_core.data.synthetic import render_clip
from t2v_core.jobs.finetune import finetune_motion as finetune_job
from t2v_core.masks import save_masks
from t2v_core.models.loading import load_base_components
from t2v_core.methods import get_training
from t2v_core.training import TrainingError
from t2v_core.training.loop import first_frame_conditioned_input, masked_diffusion_loss
from t2v_core.training.trainable import Trainable
from t2v_core.video_io import write_mp4
from t2v_core.video_unet import TemporalAdapter

VIDEO = {"num_frames": 4, "height": 32, "width": 32, "fps": 4}


def finetune_motion(parts, clip_paths, prompt, out_dir, checkpoint_root, video, finetune, name, **kwargs):
    """The registered fine-tuned model ``name``'s fine-tuning, as the finetune rule calls it."""
    return finetune_job(get_training(name), parts, clip_paths, prompt, out_dir, checkpoint_root, video, finetune, **kwargs)


def settings(**overrides):
    config = validate_config({"motions": [{"name": "m", "prompts": ["p"]}], "finetune": overrides})
    config["finetune"].update(mixed_precision="no", gradient_checkpointing=False)
    return config["finetune"]


@pytest.fixture
def clips(tmp_path):
    paths, masks = [], []
    for i in range(2):
        frames, gt = render_clip("shape_right", "square", i, 0, 6, 32, 32)
        paths.append(tmp_path / f"clip_{i}.mp4")
        write_mp4(paths[-1], frames, fps=4)
        masks.append(tmp_path / f"clip_{i}.npz")
        save_masks(masks[-1], gt)
    return paths, masks


def test_first_frame_gets_no_loss():
    torch.manual_seed(0)
    pred, target = torch.randn(1, 4, 3, 4, 4), torch.randn(1, 4, 3, 4, 4)
    changed = pred.clone()
    changed[:, :, 0] += 100
    assert masked_diffusion_loss(changed, target) == masked_diffusion_loss(pred, target)
    expected = ((pred[:, :, 1:] - target[:, :, 1:]) ** 2).mean()
    torch.testing.assert_close(masked_diffusion_loss(pred, target), expected)
    # AnimateDiff's objective (no first frame given): every frame is scored
    torch.testing.assert_close(masked_diffusion_loss(pred, target, first_frame_given=False), ((pred - target) ** 2).mean())
    assert masked_diffusion_loss(changed, target, first_frame_given=False) > 100


def test_first_frame_is_given_clean(base_parts):
    torch.manual_seed(0)
    x0, noise = torch.randn(1, 4, 3, 4, 4), torch.randn(1, 4, 3, 4, 4)
    scheduler = base_parts["scheduler"]
    noisy = first_frame_conditioned_input(scheduler, x0, noise, torch.tensor([900]))
    assert torch.equal(noisy[:, :, 0], x0[:, :, 0])
    torch.testing.assert_close(noisy[:, :, 1:], scheduler.add_noise(x0, noise, torch.tensor([900]))[:, :, 1:])
    assert (noisy[:, :, 1:] - x0[:, :, 1:]).abs().mean() > 0.5


def test_mask_weighting():
    torch.manual_seed(0)
    target = torch.zeros(1, 4, 3, 4, 4)
    pred = torch.randn(1, 4, 3, 4, 4)
    background = torch.zeros(1, 1, 3, 4, 4)
    weights = 1.0 + (2.0 - 1.0) * background  # all background, background weight 1
    torch.testing.assert_close(masked_diffusion_loss(pred, target, weights), masked_diffusion_loss(pred, target))
    mask = torch.zeros(1, 1, 3, 4, 4)
    mask[..., :2, :2] = 1
    foreground_only = torch.where(mask.bool().expand_as(pred), pred, target)
    losses = [masked_diffusion_loss(foreground_only, target, 1.0 + (fg - 1.0) * mask) for fg in (1.0, 2.0, 4.0)]
    assert losses[0] < losses[1] < losses[2]
    torch.testing.assert_close(losses[2], 4 * losses[0])


def test_only_trainable_parameters_change(tiny_model_dir, clips, tmp_path):
    parts = load_base_components(tiny_model_dir / "base")
    unet_before = {k: v.clone() for k, v in parts["unet"].state_dict().items()}
    config = settings(steps=2, learning_rate=1e-2, checkpoint_every=100)
    finetune_motion(parts, clips[0], "shape right", tmp_path / "out", tmp_path / "ckpt", VIDEO, config, "lamp")
    for key, value in parts["unet"].state_dict().items():
        assert torch.equal(value, unet_before[key]), f"frozen UNet weight {key} changed"
    torch.manual_seed(config["seed"])
    initial = TemporalAdapter.from_unet(parts["unet"], init="reference").state_dict()
    trained = TemporalAdapter.from_pretrained(tmp_path / "out")
    trainable = {n for n, _ in trained.trainable_parameters()}
    state = trained.state_dict()
    for key in state:
        if key in trainable:
            continue
        assert torch.equal(state[key], initial[key]), f"frozen adapter weight {key} changed"
    changed = [k for k in trainable if not torch.equal(state[k], initial[k])]
    assert any(".conv." in k for k in changed) and any("first_frame_queries" in k for k in changed)


def test_ours_loss_uses_masks_and_needs_them(tiny_model_dir, clips, tmp_path):
    parts = load_base_components(tiny_model_dir / "base")
    with pytest.raises(TrainingError, match="masks"):
        finetune_motion(parts, clips[0], "p", tmp_path / "o", tmp_path / "c", VIDEO, settings(steps=1), "ours")
    losses = {}
    for fg in (1.0, 5.0):
        config = settings(steps=1, ours={"foreground_weight": fg, "background_weight": 1.0})
        losses[fg] = finetune_motion(parts, clips[0], "p", tmp_path / f"o{fg}", tmp_path / f"c{fg}", VIDEO,
                                     config, "ours", mask_paths=clips[1])[0]
    assert losses[5.0] > losses[1.0]


def test_killed_run_resumes_to_the_same_weights(tiny_model_dir, clips, tmp_path):
    config = settings(steps=4, learning_rate=1e-2, checkpoint_every=2)
    parts = load_base_components(tiny_model_dir / "base")
    straight = finetune_motion(parts, clips[0], "p", tmp_path / "a", tmp_path / "ca", VIDEO, config, "lamp")
    parts = load_base_components(tiny_model_dir / "base")
    finetune_motion(parts, clips[0], "p", tmp_path / "b", tmp_path / "cb", VIDEO, config, "lamp", stop_after=3)
    assert not (tmp_path / "b").exists()
    assert (tmp_path / "cb" / "step_2").is_dir()
    parts = load_base_components(tiny_model_dir / "base")
    resumed = finetune_motion(parts, clips[0], "p", tmp_path / "b", tmp_path / "cb", VIDEO, config, "lamp")
    assert resumed == straight
    assert not (tmp_path / "cb").exists()  # complete: its checkpoints are gone
    a = TemporalAdapter.from_pretrained(tmp_path / "a").state_dict()
    b = TemporalAdapter.from_pretrained(tmp_path / "b").state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_a_completed_finetuning_removes_its_checkpoints_unless_they_are_kept(tiny_model_dir, clips, tmp_path,
                                                                            caplog):
    config = settings(steps=4, learning_rate=1e-2, checkpoint_every=2)
    parts = load_base_components(tiny_model_dir / "base")
    finetune_motion(parts, clips[0], "p", tmp_path / "a", tmp_path / "ca", VIDEO, config, "lamp")
    assert (tmp_path / "a" / "diffusion_pytorch_model.safetensors").exists() and not (tmp_path / "ca").exists()
    parts = load_base_components(tiny_model_dir / "base")
    finetune_motion(parts, clips[0], "p", tmp_path / "b", tmp_path / "cb", VIDEO, config, "lamp", keep_checkpoints=True)
    assert sorted(p.name for p in (tmp_path / "cb").iterdir()) == ["step_2"]
    # a kept checkpoint is there to continue training: a longer run resumes from it
    caplog.set_level("INFO", logger="t2v_core")
    parts = load_base_components(tiny_model_dir / "base")
    longer = finetune_motion(parts, clips[0], "p", tmp_path / "c", tmp_path / "cb", VIDEO, {**config, "steps": 6},
                             "lamp")
    assert "resuming from" in caplog.text and len(longer) == 6


@pytest.mark.parametrize("save_dtype, bits", [("fp16", 16), ("bf16", 16)])
def test_an_adapter_stored_in_half_precision_samples_as_the_fp32_one(tiny_model_dir, clips, tmp_path, save_dtype,
                                                                     bits):
    from t2v_core.methods import get_method

    folders = {}
    for dtype in ("fp32", save_dtype):
        config = settings(steps=2, learning_rate=1e-2, checkpoint_every=100, save_dtype=dtype)
        parts = load_base_components(tiny_model_dir / "base")
        finetune_motion(parts, clips[0], "p", tmp_path / dtype, tmp_path / f"c{dtype}", VIDEO, config, "lamp")
        folders[dtype] = tmp_path / dtype
    def tensor_bytes(folder):  # the file less its header (8 bytes of length, then the JSON)
        path = folder / "diffusion_pytorch_model.safetensors"
        return path.stat().st_size - 8 - int.from_bytes(path.read_bytes()[:8], "little")

    assert tensor_bytes(folders[save_dtype]) / tensor_bytes(folders["fp32"]) == bits / 32
    lamp = get_method("lamp")
    config = validate_config({"motions": [{"name": "m", "prompts": ["p"]}]})
    # the network's output, before the histogram matching: a discrete map of whole histograms,
    # it can move a pixel one level off by several (measured: bf16 max 4 with it, 1 without)
    sampling = {"num_inference_steps": 4, "lamp": {**config["sampling"]["lamp"], "histogram_matching": False}}
    first = np.full((32, 32, 3), 180, np.uint8)
    videos = {}
    for dtype, folder in folders.items():
        loaded = lamp.load({"base": tiny_model_dir / "base"}, folder, "cpu")
        assert all(p.dtype == torch.float32 for p in loaded.adapter.parameters())  # cast back
        videos[dtype] = lamp.sample(loaded, "a square", torch.Generator().manual_seed(0), lamp.resolve(VIDEO, sampling),
                                    first)
    difference = np.abs(videos[save_dtype].astype(int) - videos["fp32"].astype(int))
    print(f"{save_dtype} adapter vs fp32: mean {difference.mean():.3f}, max {difference.max()} uint8 levels")
    # the stated tolerance: 0.1 uint8 level on average and 2 at most (measured: fp16 0.000 and
    # 1, bf16 0.005 and 1; the weights are rounded to 11 or 8 significant bits)
    assert difference.mean() <= 0.1 and difference.max() <= 2


def test_checkpoints_of_other_settings_are_discarded_but_more_steps_resume(tiny_model_dir, clips, tmp_path, caplog):
    caplog.set_level("INFO", logger="t2v_core")
    config = settings(steps=4, learning_rate=1e-2, checkpoint_every=2)
    parts = load_base_components(tiny_model_dir / "base")
    finetune_motion(parts, clips[0], "p", tmp_path / "x", tmp_path / "c", VIDEO, config, "lamp", stop_after=3)
    other = {**config, "learning_rate": 5e-3}
    parts = load_base_components(tiny_model_dir / "base")
    afresh = finetune_motion(parts, clips[0], "p", tmp_path / "x", tmp_path / "c", VIDEO, other, "lamp")
    assert "starting afresh" in caplog.text and len(afresh) == 4
    parts = load_base_components(tiny_model_dir / "base")
    fresh = finetune_motion(parts, clips[0], "p", tmp_path / "y", tmp_path / "c2", VIDEO, other, "lamp")
    assert afresh == fresh  # not a mix of the two learning rates
    # more steps of the same run: its first steps are the same steps, so it resumes
    caplog.clear()
    parts = load_base_components(tiny_model_dir / "base")
    finetune_motion(parts, clips[0], "p", tmp_path / "z", tmp_path / "c3", VIDEO, config, "lamp", stop_after=3)
    parts = load_base_components(tiny_model_dir / "base")
    longer = finetune_motion(parts, clips[0], "p", tmp_path / "z", tmp_path / "c3", VIDEO,
                             {**config, "steps": 6}, "lamp")
    assert "resuming from" in caplog.text and "starting afresh" not in caplog.text
    parts = load_base_components(tiny_model_dir / "base")
    straight = finetune_motion(parts, clips[0], "p", tmp_path / "w", tmp_path / "c4", VIDEO, {**config, "steps": 6},
                               "lamp")
    assert longer == straight


def test_bf16_autocast_follows_fp32_training(tiny_model_dir, clips, tmp_path):
    """bf16 autocast (the GPU speed-up, available on CPUs as well) changes the numbers only at
    bf16's precision: the same steps give losses within 2% and an adapter update that mostly agrees."""
    runs = {}
    for precision in ("no", "bf16"):
        config = settings(steps=3, learning_rate=1e-2, checkpoint_every=100)
        config["mixed_precision"] = precision
        parts = load_base_components(tiny_model_dir / "base")
        losses = finetune_motion(parts, clips[0], "p", tmp_path / precision, tmp_path / f"c{precision}", VIDEO,
                                 config, "lamp")
        runs[precision] = (np.array(losses), TemporalAdapter.from_pretrained(tmp_path / precision).state_dict())
    (fp32_losses, fp32), (bf16_losses, bf16) = runs["no"], runs["bf16"]
    assert not np.array_equal(fp32_losses, bf16_losses)  # autocast was on: bf16 rounding shows
    np.testing.assert_allclose(bf16_losses, fp32_losses, rtol=0.02)
    # AdamW's steps are normalised, so a gradient near zero can flip sign under bf16: compare
    # the whole update, not single weights
    initial = TemporalAdapter.from_unet(load_base_components(tiny_model_dir / "base")["unet"]).state_dict()
    update = sum(float((fp32[k] - initial[k]).pow(2).sum()) for k in fp32) ** 0.5
    difference = sum(float((bf16[k] - fp32[k]).pow(2).sum()) for k in fp32) ** 0.5
    print(f"bf16 vs fp32: update {update:.4f}, difference {difference:.4f}")
    assert update > 0 and difference < 0.25 * update


def test_short_clip_is_named(tiny_model_dir, clips, tmp_path):
    frames, _ = render_clip("shape_right", "square", 5, 0, 2, 32, 32)
    short = tmp_path / "too_short.mp4"
    write_mp4(short, frames, fps=4)
    parts = load_base_components(tiny_model_dir / "base")
    with pytest.raises(TrainingError, match="too_short.mp4"):
        finetune_motion(parts, [clips[0][0], short], "p", tmp_path / "o", tmp_path / "c", VIDEO, settings(steps=1), "lamp")


def test_nan_loss_names_the_step(tiny_model_dir, clips, tmp_path):
    parts = load_base_components(tiny_model_dir / "base")
    with torch.no_grad():
        parts["unet"].conv_out.bias.fill_(float("nan"))
    with pytest.raises(TrainingError, match="step 1"):
        finetune_motion(parts, clips[0], "p", tmp_path / "o", tmp_path / "c", VIDEO, settings(steps=2), "lamp")
    assert not (tmp_path / "o").exists()


def test_normalised_and_foreground_losses_by_hand():
    # frame 1 is given (no loss); frames 2..3 have errors 1 (background) and 3 (foreground pixel)
    pred, target = torch.zeros(1, 1, 3, 1, 2), torch.zeros(1, 1, 3, 1, 2)
    pred[..., 0], pred[..., 1] = 1.0, 3.0  # squared errors 1 and 9
    mask = torch.zeros(1, 1, 3, 1, 2)
    mask[..., 1] = 1.0
    weights = 1.0 + (2.0 - 1.0) * mask  # Ours' 2:1
    assert masked_diffusion_loss(pred, target, weights).item() == pytest.approx((1 + 2 * 9) / 2)  # not normalised
    assert masked_diffusion_loss(pred, target, weights, normalised=True).item() == pytest.approx((1 + 2 * 9) / 3)
    assert masked_diffusion_loss(pred, target, mask, normalised=True).item() == pytest.approx(9.0)  # foreground only
    assert masked_diffusion_loss(pred, target, mask * 0, normalised=True).item() == 0.0  # no foreground in the window


class RecordingDenoiser(torch.nn.Module):
    """Predicts a trainable constant (0 at first) and keeps what the loop gave it."""

    def __init__(self):
        super().__init__()
        self.value = torch.nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, noisy, timesteps, texts):
        self.seen.append((noisy.detach().clone(), timesteps.clone()))
        return torch.zeros_like(noisy) + self.value


def test_foreground_noised_training_leaves_the_background_clean(base_parts, tmp_path):
    """ours_fg_noised: the UNet sees the background un-noised (sqrt(alpha_bar) x0) and is asked
    to predict zero noise there; the foreground is noised as usual."""
    from t2v_core.training.checkpoints import Checkpoints
    from t2v_core.training.data import TrainingSet
    from t2v_core.training.loop import train_denoiser

    torch.manual_seed(0)
    mean = torch.randn(4, 3, 2, 2)
    latents = [torch.stack([mean, torch.zeros_like(mean)])]  # std 0: x0 is the mean
    mask = torch.zeros(1, 3, 2, 2)
    mask[..., 0, :] = 1.0  # the top row is the subject
    data = TrainingSet(["clip"], ["p"], latents, [mask], torch.zeros(1, 77, 32))
    training = get_training("ours_fg_noised")
    loop = {**settings(steps=1), "batch_size": 1, "random_flip": False}
    denoiser = RecordingDenoiser()
    trainable = Trainable.one_group(denoiser, denoiser, 1e-3, loss_weighting=training.loss_weighting({}),
                                    normalised=training.normalised_loss, noise_weighting=training.noise_weighting({}))
    losses, _ = train_denoiser(trainable, data, base_parts["scheduler"], loop, 3, Checkpoints(tmp_path / "ckpt", "f"))
    noisy, timestep = denoiser.seen[0]
    alpha_bar = base_parts["scheduler"].alphas_cumprod[timestep[0]]
    clean = alpha_bar.sqrt() * mean
    torch.testing.assert_close(noisy[0, :, 1:, 1], clean[:, 1:, 1])  # background rows: no noise
    assert (noisy[0, :, 1:, 0] - clean[:, 1:, 0]).abs().min() > 0  # foreground rows: noised
    torch.testing.assert_close(noisy[0, :, 0], mean[:, 0])  # the first frame is given clean
    # the target is the noise actually added: zero on the background
    added = (noisy[0, :, 1:] - clean[:, 1:]) / (1 - alpha_bar).sqrt()
    assert losses[0] == pytest.approx(float((added ** 2).mean()), rel=1e-5)


def test_the_variants_share_or_own_their_fine_tuned_models():
    from t2v_core.methods import get_method, trainings

    assert trainings(["ours_noise", "ours_latents", "ours_noise_no_adain"]) == {"ours": get_training("ours")}
    assert set(trainings(["ours_fg_loss_noise", "ours_fg_loss_latents"])) == {"ours_fg_loss"}
    config = validate_config({"motions": [{"name": "m", "prompts": ["p"]}]})
    assert config["sampling"]["ours_noise_no_adain"]["adain"] is False
    assert config["sampling"]["ours_noise"]["adain"] is True
    assert get_method("ours_noise_no_adain").first_frame == "noise" and get_method("ours_noise_no_adain").variant
    assert not get_method("ours_noise").variant
    assert get_training("ours_normalised").normalised_loss and not get_training("ours").normalised_loss


class RunsOutOfMemoryUntilCheckpointed(RecordingDenoiser):
    """Raises the CUDA out-of-memory error while ``checkpointed`` is off."""

    checkpointed = False

    def forward(self, noisy, timesteps, texts):
        if not self.checkpointed:
            raise torch.OutOfMemoryError("CUDA out of memory (test)")
        return super().forward(noisy, timesteps, texts)


def test_gradient_checkpointing_auto_turns_on_when_the_first_step_runs_out_of_memory(base_parts, tmp_path):
    from t2v_core.training.checkpoints import Checkpoints
    from t2v_core.training.data import TrainingSet
    from t2v_core.training.loop import apply_gradient_checkpointing, train_denoiser

    torch.manual_seed(0)
    data = TrainingSet(["clip"], ["p"], [torch.randn(2, 4, 3, 2, 2)], None, torch.zeros(1, 77, 32))
    loop = {**settings(steps=3), "batch_size": 1, "random_flip": False}
    runs = {}
    for name in ("auto", "on from the start"):
        denoiser = RunsOutOfMemoryUntilCheckpointed()
        enable = apply_gradient_checkpointing("auto" if name == "auto" else True, "cuda",
                                              lambda d=denoiser: setattr(d, "checkpointed", True))
        assert denoiser.checkpointed is (name != "auto")  # auto starts without it
        torch.manual_seed(1)
        runs[name] = train_denoiser(Trainable.one_group(denoiser, denoiser, 1e-3), data, base_parts["scheduler"], loop,
                                    3, Checkpoints(tmp_path / name, "f"), on_out_of_memory=enable)[0], denoiser
    (auto_losses, auto), (on_losses, on) = runs["auto"], runs["on from the start"]
    assert auto.checkpointed
    # the failed step is run again on the same batch: the same training as with it on throughout
    assert auto_losses == on_losses and len(auto_losses) == 3
    for (a, ta), (b, tb) in zip(auto.seen, on.seen):
        assert torch.equal(a, b) and torch.equal(ta, tb)
    # without auto, or on a CPU, the error is the user's to see
    denoiser = RunsOutOfMemoryUntilCheckpointed()
    assert apply_gradient_checkpointing(False, "cuda", lambda: None) is None
    assert apply_gradient_checkpointing("auto", "cpu", lambda: None) is None
    with pytest.raises(torch.OutOfMemoryError):
        train_denoiser(Trainable.one_group(denoiser, denoiser, 1e-3), data, base_parts["scheduler"], loop, 3,
                       Checkpoints(tmp_path / "x", "f"))


@pytest.mark.parametrize("setting, device, bf16, expected", [
    ("auto", "cpu", None, (None, False)), ("auto", "cuda", True, (torch.bfloat16, True)),
    ("auto", "cuda", False, (torch.float16, True)), ("fp16", "cpu", None, (torch.float16, False)),
    ("bf16", "cpu", None, (torch.bfloat16, True)), ("no", "cuda", True, (None, False)),
])
def test_mixed_precision_choice(setting, device, bf16, expected):
    from t2v_core.training.loop import autocast_settings

    assert autocast_settings(setting, device, bf16_supported=bf16)[1:] == expected


def test_long_clips_are_read_a_few_frames_at_a_time(base_parts, tmp_path, monkeypatch):
    """A clip of real footage runs to hundreds of frames: it is decoded, resized and encoded
    CHUNK_FRAMES at a time (the paper rehearsal's 795-frame 768x576 clip held whole in float
    took 9-11 GB per fine-tuning job), with the posterior and masks of the whole-clip path."""
    import torch.nn.functional as F

    from t2v_core.training import data as training_data
    from t2v_core.video_io import read_video

    frames, gt = render_clip("shape_right", "square", 0, 0, 21, 40, 56)  # 21 frames: 8 + 8 + 5
    path, mask_path = tmp_path / "long.mp4", tmp_path / "long.npz"
    write_mp4(path, frames, fps=4)
    save_masks(mask_path, gt)
    video = {"num_frames": 4, "height": 32, "width": 48, "fps": 4}
    seen = []
    resize = training_data.resize_frames
    monkeypatch.setattr(training_data, "resize_frames", lambda f, h, w: seen.append(len(f)) or resize(f, h, w))
    data = training_data.prepare_training_set(base_parts, [path], "a square", video, [mask_path])
    assert seen == [8, 8, 5]
    whole = resize(read_video(path), 32, 48)
    torch.testing.assert_close(data.latents[0], training_data.encode_clips(base_parts["vae"], [whole], "cpu")[0])
    m = torch.from_numpy(gt.astype(np.float32))[:, None]
    expected = F.avg_pool2d(F.interpolate(m, size=(32, 48), mode="area"), 8).permute(1, 0, 2, 3)
    assert data.masks[0].shape == (1, 21, 4, 6)
    torch.testing.assert_close(data.masks[0], expected)


def test_masks_of_another_length_than_their_clip_are_named(base_parts, clips, tmp_path):
    paths, masks = clips
    frames, gt = render_clip("shape_right", "square", 0, 0, 5, 32, 32)
    save_masks(masks[1], gt)  # 5 frames of masks for a 6-frame clip
    from t2v_core.training.data import prepare_training_set

    with pytest.raises(TrainingError, match=f"{masks[1]}: masks of 5 frames for the 6 frames"):
        prepare_training_set(base_parts, paths, "a square", VIDEO, masks)


def _numbered_clip(frames: int):
    """A TrainingSet of one clip whose latent frame f is filled with f (std 0: x0 is the mean),
    caption embedding 1, empty caption 0."""
    from t2v_core.training.data import TrainingSet

    mean = torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1).expand(4, frames, 2, 2).clone()
    return TrainingSet(["clip"], ["p"], [torch.stack([mean, torch.zeros_like(mean)])], None,
                       torch.ones(1, 77, 8), torch.zeros(77, 8))


def test_motionlora_windows_take_every_stride_th_frame_as_animatediffs_dataset():
    from t2v_core.training.loop import _training_batch

    rng = np.random.default_rng(0)
    loop = {"batch_size": 1, "random_flip": False, "frame_stride": 4}
    for _ in range(20):  # 40 frames: a 4-frame window every 4th spans 13 frames, starting at 0..27
        x0, _, _, _ = _training_batch(_numbered_clip(40), rng, loop, 4, (None,), "cpu")
        first = int(x0[0, 0, 0, 0, 0])
        assert x0[0, 0, :, 0, 0].tolist() == [first, first + 4, first + 8, first + 12] and first <= 27
    # 7 frames are fewer than the 13 a stride of 4 needs: the window spreads over all of them
    x0, _, _, _ = _training_batch(_numbered_clip(7), rng, loop, 4, (None,), "cpu")
    assert x0[0, 0, :, 0, 0].tolist() == [0, 2, 4, 6]  # np.linspace(0, 6, 4) as integers


def test_stride_1_windows_are_drawn_as_before():
    """LAMP and Ours keep consecutive frames and the same random draws (their numbers unchanged)."""
    from t2v_core.training.loop import _training_batch

    plain = {"batch_size": 3, "random_flip": True}
    with_defaults = {**plain, "frame_stride": 1, "empty_caption_ratio": 0.0}
    got = [_training_batch(_numbered_clip(10), np.random.default_rng(5), loop, 4, (None,), "cpu")
           for loop in (plain, with_defaults)]
    torch.testing.assert_close(got[0][0], got[1][0], rtol=0, atol=0)
    starts = got[0][0][:, 0, 0, 0, 0].tolist()
    rng = np.random.default_rng(5)  # the draws: a clip, a start, a flip per window
    expected = []
    for _ in range(3):
        rng.integers(1)
        expected.append(float(rng.integers(7)))
        rng.random()
    assert starts == expected


def test_a_share_of_motionlora_captions_is_left_empty():
    from t2v_core.training.loop import _training_batch

    rng = np.random.default_rng(0)
    for ratio, low, high in ((0.0, 0, 0), (0.1, 60, 140), (1.0, 1000, 1000)):
        loop = {"batch_size": 10, "random_flip": False, "empty_caption_ratio": ratio}
        empty = sum(int((_training_batch(_numbered_clip(4), rng, loop, 4, (None,), "cpu")[2][:, 0, 0] == 0).sum())
                    for _ in range(100))
        assert low <= empty <= high, (ratio, empty)


def test_the_paper_config_trains_motionlora_with_animatediffs_data_settings():
    config = validate_config({"motions": [{"name": "m", "prompts": ["p"]}]})
    block = config["finetune"]["motionlora"]
    assert (block["frame_stride"], block["empty_caption_ratio"], block["random_flip"]) == (4, 0.1, False)
    settings_ = get_training("motionlora").loop_settings(config["finetune"])
    assert (settings_["frame_stride"], settings_["empty_caption_ratio"]) == (4, 0.1)
    assert "frame_stride" not in get_training("lamp").loop_settings(config["finetune"])


def test_a_stride_capped_by_a_short_clip_is_logged(caplog):
    from t2v_core.training.loop import log_capped_strides

    caplog.set_level("INFO", logger="t2v_core")
    log_capped_strides({"long.mp4": 61, "short.mp4": 60}, 16, 4)
    assert "short.mp4: 60 frames, fewer than the 61 that 16 frames every 4-th span" in caplog.text
    assert "long.mp4" not in caplog.text


class TwoConstants(torch.nn.Module):
    """Predicts a + b, two trainable constants."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Parameter(torch.zeros(())), torch.nn.Parameter(torch.zeros(()))

    def forward(self, noisy, timesteps, texts):
        return torch.zeros_like(noisy) + self.a + self.b


def test_each_parameter_group_trains_at_its_own_learning_rate(base_parts, tmp_path):
    from t2v_core.training.checkpoints import Checkpoints
    from t2v_core.training.data import TrainingSet
    from t2v_core.training.loop import train_denoiser
    from t2v_core.training.trainable import ParamGroup

    data = TrainingSet(["clip"], ["p"], [torch.randn(2, 4, 3, 2, 2, generator=torch.Generator().manual_seed(0))],
                       None, torch.zeros(1, 77, 32))
    loop = {**settings(steps=3), "batch_size": 1, "random_flip": False}
    moved = {}
    for rates in ((0.0, 1e-2), (1e-2, 1e-2), (1e-2, 1e-3)):
        model = TwoConstants()
        groups = [ParamGroup("spatial", {"a": model.a}, rates[0]), ParamGroup("temporal", {"b": model.b}, rates[1])]
        torch.manual_seed(0)
        train_denoiser(Trainable(model, model, groups), data, base_parts["scheduler"], loop, 3,
                       Checkpoints(tmp_path / str(rates), "f"))
        moved[rates] = abs(model.a.item()), abs(model.b.item())
    assert moved[(0.0, 1e-2)][0] == 0.0 and moved[(0.0, 1e-2)][1] > 0  # a group at rate 0 stays
    # both constants get the same gradient: at equal rates they move alike, at a tenth less
    assert moved[(1e-2, 1e-2)][0] == pytest.approx(moved[(1e-2, 1e-2)][1])
    assert moved[(1e-2, 1e-3)][1] < 0.5 * moved[(1e-2, 1e-3)][0]
    model = TwoConstants()
    twice = Trainable(model, model, [ParamGroup("x", {"a": model.a}, 1e-3), ParamGroup("y", {"a": model.a}, 1e-3)])
    with pytest.raises(TrainingError, match="parameter group 'y'"):
        train_denoiser(twice, data, base_parts["scheduler"], loop, 3, Checkpoints(tmp_path / "twice", "f"))
