"""AnimateDiff and AnimateDiff + MotionLoRA (tiny random-weight models of the real classes):
sampling is diffusers' pipeline, the MotionLoRA file is diffusers' LoRA format, only the LoRA
trains, and a killed fine-tuning resumes."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from t2v_core.config import validate_config
from t2v_core.jobs.finetune import finetune_motion, train
from t2v_core.methods import get_method, get_training
from t2v_core.methods.animatediff import LORA_NAME, motion_unet
from t2v_core.models.loading import load_base_components
from t2v_core.sampling import to_uint8

VIDEO = {"num_frames": 4, "height": 32, "width": 32, "fps": 4}
PROMPT = "a red square moves to the right"


@pytest.fixture(scope="module")
def config():
    return validate_config({"motions": [{"name": "m", "prompts": ["p"]}]})


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from t2v_core.data.synthetic import synthesize_motion_clips

    return synthesize_motion_clips(tmp_path_factory.mktemp("clips"), "shape_right", "square", 0, 2, 5, 32, 32)


def finetune_settings(config, steps=4, save_dtype="fp32", **motionlora):
    settings = {**config["finetune"], "checkpoint_every": 2, "mixed_precision": "no", "gradient_checkpointing": False,
                "save_dtype": save_dtype}
    settings["motionlora"] = {**settings["motionlora"], "steps": steps, "rank": 4, "batch_size": 2,
                              "learning_rate": 1e-2, **motionlora}
    return settings


def motionlora(tiny_model_dir, clips, config, out_dir, checkpoints, save_dtype="fp32", **kwargs):
    return finetune_motion(
        get_training("motionlora"), load_base_components(tiny_model_dir / "base"), clips, PROMPT, out_dir, checkpoints, VIDEO,
        finetune_settings(config, save_dtype=save_dtype), model_dirs={"motion_adapter": tiny_model_dir / "motion_adapter"},
        **kwargs)


@pytest.fixture(scope="module")
def lora_dir(tiny_model_dir, clips, config, tmp_path_factory):
    root = tmp_path_factory.mktemp("motionlora")
    motionlora(tiny_model_dir, clips, config, root / "adapter", root / "checkpoints")
    return root / "adapter"


def reference_pipeline(tiny_model_dir, beta_schedule="linear"):
    """diffusers' AnimateDiffPipeline built directly from the same folders."""
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

    parts = load_base_components(tiny_model_dir / "base")
    parts["scheduler"] = DDIMScheduler.from_config(parts["scheduler"].config, beta_schedule=beta_schedule)
    pipe = AnimateDiffPipeline(**parts, motion_adapter=MotionAdapter.from_pretrained(tiny_model_dir / "motion_adapter"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def reference_video(pipe, seed, guidance_scale=7.5):
    result = pipe(prompt=PROMPT, num_frames=VIDEO["num_frames"], height=VIDEO["height"], width=VIDEO["width"],
                  num_inference_steps=5, guidance_scale=guidance_scale, generator=torch.Generator().manual_seed(seed),
                  output_type="np")
    return to_uint8(result.frames[0])


def ours(name, tiny_model_dir, config, seed, adapter_dir=None, **settings):
    method = get_method(name)
    sampling = {"num_inference_steps": 5, name: {**config["sampling"][name], **settings}}
    loaded = method.load({model: tiny_model_dir / model for model in method.models}, adapter_dir, "cpu")
    return method.sample(loaded, PROMPT, torch.Generator().manual_seed(seed), method.resolve(VIDEO, sampling))


def test_animatediff_is_diffusers_pipeline_byte_for_byte(tiny_model_dir, config):
    pipe = reference_pipeline(tiny_model_dir)
    for seed in (0, 1):
        np.testing.assert_array_equal(ours("animatediff", tiny_model_dir, config, seed), reference_video(pipe, seed))
    # the schedule is the setting's: Stable Diffusion's own betas give another video
    other = ours("animatediff", tiny_model_dir, config, 0, beta_schedule="scaled_linear")
    np.testing.assert_array_equal(other, reference_video(reference_pipeline(tiny_model_dir, "scaled_linear"), 0))
    assert not np.array_equal(other, reference_video(pipe, 0))


def test_motionlora_file_loads_through_diffusers_and_changes_the_output(tiny_model_dir, config, lora_dir):
    weights = load_file(lora_dir / "pytorch_lora_weights.safetensors")
    # diffusers' LoRA format, on the motion modules' attention projections only
    assert weights and all(k.startswith("unet.") and ".motion_modules." in k and ".lora." in k for k in weights)
    assert {k.split(".attn")[1].split(".lora")[0][2:] for k in weights} == {"to_q", "to_k", "to_v", "to_out.0"}
    pipe = reference_pipeline(tiny_model_dir)
    without = reference_video(pipe, 0)
    pipe.load_lora_weights(lora_dir, adapter_name=LORA_NAME)
    with_lora = reference_video(pipe, 0)
    assert np.abs(with_lora.astype(int) - without.astype(int)).mean() > 0.5
    np.testing.assert_array_equal(ours("animatediff_motionlora", tiny_model_dir, config, 0, lora_dir), with_lora)
    # lora_scale 0 is AnimateDiff without the LoRA
    np.testing.assert_array_equal(
        ours("animatediff_motionlora", tiny_model_dir, config, 0, lora_dir, lora_scale=0.0), without)


def test_only_the_lora_trains_and_the_base_unet_is_untouched(tiny_model_dir, clips, config):
    from t2v_core.training.checkpoints import Checkpoints
    from t2v_core.training.data import prepare_training_set

    parts = load_base_components(tiny_model_dir / "base")
    base_before = {k: v.clone() for k, v in parts["unet"].state_dict().items()}
    reference = motion_unet(parts["unet"], tiny_model_dir / "motion_adapter")
    data = prepare_training_set(parts, clips, PROMPT, VIDEO)
    torch.manual_seed(0)
    trainable, losses, complete = train(
        get_training("motionlora"), parts, {"motion_adapter": tiny_model_dir / "motion_adapter"}, data, VIDEO, finetune_settings(config, steps=2),
        Checkpoints(tiny_model_dir.parent / "unused", "x"), "cpu", None)
    assert complete and len(losses) == 2
    trained = trainable.module
    trainable = {n for n, p in trained.named_parameters() if p.requires_grad}
    # 7 motion modules x 2 attentions x 4 projections x (A, B)
    assert len(trainable) == 112 and all(".lora_" in n and ".motion_modules." in n for n in trainable)
    state = trained.state_dict()
    for name, value in reference.state_dict().items():  # every non-LoRA weight as it was loaded
        peft_name = name.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        torch.testing.assert_close(state.get(name, state.get(peft_name)), value, rtol=0, atol=0)
    lora_b = [p for n, p in trained.named_parameters() if ".lora_B." in n]
    assert all(p.abs().max() > 0 for p in lora_b)  # B starts at zero: it moved
    for name, value in parts["unet"].state_dict().items():
        torch.testing.assert_close(value, base_before[name], rtol=0, atol=0)
    assert not any("lora" in n for n in dict(parts["unet"].named_modules()))


def test_killed_motionlora_finetuning_resumes_from_its_checkpoint(tiny_model_dir, clips, config, tmp_path):
    whole = motionlora(tiny_model_dir, clips, config, tmp_path / "whole", tmp_path / "whole_ckpt")
    part = motionlora(tiny_model_dir, clips, config, tmp_path / "killed", tmp_path / "ckpt", stop_after=2)
    assert len(part) == 2 and not (tmp_path / "killed").exists()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step_2"]
    resumed = motionlora(tiny_model_dir, clips, config, tmp_path / "killed", tmp_path / "ckpt")
    assert resumed == whole
    a = load_file(tmp_path / "whole" / "pytorch_lora_weights.safetensors")
    b = load_file(tmp_path / "killed" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_motionlora_stored_in_fp16_samples_as_the_fp32_one(tiny_model_dir, clips, config, lora_dir, tmp_path):
    motionlora(tiny_model_dir, clips, config, tmp_path / "fp16", tmp_path / "checkpoints", save_dtype="fp16")
    half = load_file(tmp_path / "fp16" / "pytorch_lora_weights.safetensors")
    full = load_file(lora_dir / "pytorch_lora_weights.safetensors")
    assert half.keys() == full.keys() and all(v.dtype == torch.float16 for v in half.values())
    assert all(torch.allclose(half[k].float(), full[k], rtol=1e-3, atol=1e-4) for k in full)
    a = ours("animatediff_motionlora", tiny_model_dir, config, 0, lora_dir)
    b = ours("animatediff_motionlora", tiny_model_dir, config, 0, tmp_path / "fp16")
    difference = np.abs(a.astype(int) - b.astype(int))
    assert difference.mean() <= 1.0 and difference.max() <= 8
