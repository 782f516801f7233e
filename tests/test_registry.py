"""The registries are the one place a method, a metric or a source is declared: the schema
agrees with them, and every registered method keeps the sampling contract (tiny models)."""

import math

import numpy as np
import pytest
import torch
import yaml

from t2v_core.config import ConfigError, load_schema, validate_config
from t2v_core.data.sources import data_source_names
from t2v_core.jobs.finetune import finetune_motion
from t2v_core.methods import get_method, method_names, trainings
from t2v_core.metrics.registry import evaluators_for, get_evaluator, metric_switches, metrics, table_metrics
from t2v_core.models.prepare import model_source_names

from conftest import REPO

SCHEMA = load_schema()["properties"]


def test_the_schemas_methods_are_the_registrys():
    """The assembled schema's methods are the registry's (plus the words for groups); the default
    is every method that is not a variant, and config/variants.yaml adds the variants by word."""
    methods = SCHEMA["methods"]
    assert methods["items"]["enum"] == [*method_names(), "study", "variants"]
    assert methods["default"] == [m for m in method_names() if not get_method(m).variant]
    demo = validate_config(yaml.safe_load((REPO / "config" / "demo.yaml").read_text()))
    variants = validate_config({**yaml.safe_load((REPO / "config" / "demo.yaml").read_text()),
                                **yaml.safe_load((REPO / "config" / "variants.yaml").read_text())})
    assert variants["methods"] == demo["methods"] + [m for m in method_names() if get_method(m).variant]
    # the default order is the table's: the poster's rows first, then the additions
    assert methods["default"] == ["text2video_zero", "lamp", "ours_noise", "ours_latents", "per_frame_t2i",
                                  "animatediff", "animatediff_motionlora"]
    assert SCHEMA["data"]["properties"]["source"]["enum"] == data_source_names()
    assert SCHEMA["models"]["properties"]["source"]["enum"] == model_source_names()


def test_every_method_and_fine_tuned_model_has_its_settings_block():
    """Each registered method's block sampling.<name> and fine-tuned model's finetune.<name> is in
    the assembled schema, as declared beside its code, every key with a default and a description."""
    from t2v_core.settings import check_properties

    sampling, finetune = SCHEMA["sampling"]["properties"], SCHEMA["finetune"]["properties"]
    for name in method_names():
        assert sampling[name]["type"] == "object" and sampling[name]["description"], name
        assert sampling[name]["properties"] == get_method(name).settings
        assert "guidance_scale" in sampling[name]["properties"], name
        assert check_properties(f"sampling.{name}", sampling[name]["properties"]) == []
    for name, training in trainings().items():
        assert finetune[name]["type"] == "object" and finetune[name]["description"], name
        assert finetune[name]["properties"] == training.settings
        assert check_properties(f"finetune.{name}", finetune[name]["properties"]) == []
    assert check_properties("sampling.x", {"a": {"type": "number"}}) == ["sampling.x.a: no default",
                                                                         "sampling.x.a: no description"]


def test_every_methods_settings_resolve_to_typed_fields_named_as_its_block():
    """A sampling job's settings, resolved once: the shape and steps, and the method's block
    (from a validated config) as a typed object whose fields are the block's keys; a key it
    did not declare is refused, named."""
    config = validate_config({"motions": [{"name": "m", "prompts": ["p"]}], "methods": ["study", "variants"],
                              "video": {"num_frames": 5, "height": 48, "width": 80}})
    for name in method_names():
        method = get_method(name)
        call = method.resolve(config["video"], config["sampling"])
        own = config["sampling"][name]
        assert call.own.arguments() == own and type(call.own).__dataclass_params__.frozen, name
        assert call.arguments() == {"num_frames": 5, "height": 48, "width": 80,
                                    "num_inference_steps": config["sampling"]["num_inference_steps"], **own}
        assert method.resolve(config["video"], config["sampling"]).own == call.own  # the same class each time
        with pytest.raises(ValueError, match=rf"sampling\.{name}: unknown settings \['stray'\]"):
            method.resolve(config["video"], {**config["sampling"], name: {**own, "stray": 1}})


def test_a_method_nobody_registered_is_named(monkeypatch):
    import t2v_core.methods as registry

    config = {"motions": [{"name": "m", "prompts": ["p"]}], "methods": ["lamp", "per_frame_t2i"]}
    validate_config(config)
    monkeypatch.delitem(registry.METHOD_REGISTRY._items, "per_frame_t2i")  # put back after the test
    with pytest.raises(ConfigError, match=r"methods.1: 'per_frame_t2i' is not one of"):
        validate_config(config)


def test_labels_poster_rows_and_trainings_come_from_the_method_modules():
    study = [m for m in method_names() if not get_method(m).variant]
    assert {m: get_method(m).label for m in study} == {
        "text2video_zero": "Text2Video-Zero", "lamp": "LAMP", "ours_noise": "Ours (Noise)",
        "ours_latents": "Ours (Latents)", "per_frame_t2i": "Per-frame T2I", "animatediff": "AnimateDiff",
        "animatediff_motionlora": "AnimateDiff + MotionLoRA"}
    assert {m: get_method(m).training.name for m in study if get_method(m).training} == {
        "lamp": "lamp", "ours_noise": "ours", "ours_latents": "ours", "animatediff_motionlora": "motionlora"}
    assert [name for name, t in trainings(study).items() if t.needs_masks] == ["ours"]
    assert {name: t.models for name, t in trainings(study).items()} == {
        "motionlora": ("base", "motion_adapter"), "lamp": ("base",), "ours": ("base",)}
    assert {m: get_method(m).first_frame for m in study} == {
        "text2video_zero": None, "lamp": "latents", "ours_noise": "noise", "ours_latents": "latents",
        "per_frame_t2i": None, "animatediff": None, "animatediff_motionlora": None}
    # the variants of Ours: one more sampling of Ours' model, three more fine-tuned models, each
    # read with the masks and sampled in both modes; none is a poster row
    variants = [m for m in method_names() if get_method(m).variant]
    assert {name for name in trainings(variants)} == {"ours", "ours_normalised", "ours_fg_loss", "ours_fg_noised"}
    assert all(t.needs_masks for t in trainings(variants).values())
    assert all(get_method(m).poster == {} for m in variants)
    assert get_method("animatediff").models == ("base", "motion_adapter")
    assert get_method("per_frame_t2i").poster == {}
    assert get_method("ours_noise").poster == {"alignment": 23.37, "consistency": 94.91, "diversity": 96.66}


def test_metric_table_order_and_evaluators():
    vbench = ["subject_consistency_clip", "frame_steadiness", "subject_consistency_dino", "temporal_flickering",
              "warping_error", "dynamic_degree", "flow_magnitude", "aesthetic_quality"]
    toy = ["motion_correct", "motion_magnitude", "subject_consistency"]
    assert [m.name for m in table_metrics(table="comparison")] == ["alignment", "consistency", "diversity", *vbench, *toy]
    assert [m.name for m in table_metrics(table="motions")] == [
        "alignment", "consistency", "diversity_prompts", "diversity_seeds", "diversity_frames", *vbench, *toy]
    assert [m.column for m in metrics("clip") if m.compute] == [
        "alignment", "consistency", "prompt_diversity_prompts", "prompt_diversity_seeds", "prompt_diversity_frames"]
    assert [m.name for m in metrics("clip_patch_tokens")] == ["subject_consistency_clip"]
    assert get_evaluator("clip").models == get_evaluator("clip_patch_tokens").models == ("clip",)
    paper = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    demo = validate_config(yaml.safe_load((REPO / "config" / "demo.yaml").read_text()))
    assert evaluators_for(paper) == ["clip", "frames", "dino", "raft", "aesthetic"]
    assert evaluators_for(demo) == ["clip", "clip_patch_tokens", "frames", "toy_motion"]
    assert get_evaluator("aesthetic").models == ("clip", "aesthetic")


@pytest.fixture(scope="module")
def fine_tuned(tiny_model_dir, tmp_path_factory):
    """Every registered fine-tuned model, trained for 2 steps on 2 synthetic clips (all-foreground
    masks where it reads them), through the same call as the workflow's."""
    from t2v_core.data.synthetic import synthesize_motion_clips
    from t2v_core.masks import save_masks
    from t2v_core.models.loading import load_base_components

    root = tmp_path_factory.mktemp("fine_tuned")
    clips = synthesize_motion_clips(root / "clips", "shape_right", "square", 0, 2, 4, 32, 32)
    masks = []
    for clip in clips:
        masks.append(root / f"{clip.stem}.npz")
        save_masks(masks[-1], np.ones((4, 32, 32), bool))
    config = validate_config({"motions": [{"name": "m", "prompts": ["p"]}]})
    settings = {**config["finetune"], "steps": 2, "mixed_precision": "no", "gradient_checkpointing": False}
    for name in trainings():
        if "steps" in settings[name]:  # a fine-tuning with its own steps and batch size
            settings[name] = {**settings[name], "steps": 2, "batch_size": 1}
    video = {"num_frames": 3, "height": 32, "width": 32}
    folders = {}
    for name, training in trainings().items():
        folders[name] = root / name / "adapter"
        finetune_motion(training, load_base_components(tiny_model_dir / "base"), clips, "a square", folders[name],
                        root / name / "checkpoints", video, settings, mask_paths=masks,
                        model_dirs={model: tiny_model_dir / model for model in training.models})
    return folders


@pytest.mark.parametrize("name", method_names())
def test_every_registered_method_samples_seeded_videos(name, tiny_model_dir, fine_tuned):
    """The contract of a method: load once, then one uint8 video per call, the same for the same
    seed and different for another."""
    method = get_method(name)
    config = validate_config({"motions": [{"name": "m", "prompts": ["p"]}],
                              "sampling": {"num_inference_steps": 4, "text2video_zero": {"t0": 1, "t1": 2}}})
    sampling = {"num_inference_steps": 4, name: config["sampling"][name]}
    video = {"num_frames": 3, "height": 32, "width": 32}
    models = {model: tiny_model_dir / model for model in method.models}
    loaded = method.load(models, fine_tuned[method.training.name] if method.training else None, "cpu")
    image = np.full((32, 32, 3), 200, np.uint8) if method.needs_first_frame_image else None

    def sample(seed):
        return method.sample(loaded, "a red square", torch.Generator().manual_seed(seed), method.resolve(video, sampling),
                             image)

    first = sample(0)
    assert first.shape == (3, 32, 32, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(sample(0), first)
    assert not np.array_equal(sample(1), first)
    assert math.isfinite(float(first.std())) and first.std() > 0


def test_the_schemas_diversity_readings_are_the_registrys():
    """evaluation.diversity names the registry's readings (the schema's enum, its default first)."""
    from t2v_core.config import load_schema
    from t2v_core.metrics.registry import chosen_readings, get_metric

    readings = get_metric("diversity").readings
    key = load_schema()["properties"]["evaluation"]["properties"]["diversity"]
    assert [f"diversity_{r}" for r in key["enum"]] == list(readings)
    assert f"diversity_{key['default']}" == readings[0]
    assert chosen_readings({"diversity": "seeds"}) == {"diversity": "diversity_seeds"}
    assert chosen_readings({}) == {"diversity": "diversity_prompts"}
    with pytest.raises(ValueError, match="evaluation.diversity: 'pixels' is not one of"):
        chosen_readings({"diversity": "pixels"})


def test_the_schemas_metric_switches_are_the_registrys():
    """evaluation.metrics lists exactly the switches of the registered metrics, and each switch
    turns on only its own metrics."""
    from t2v_core.config import load_schema
    from t2v_core.metrics.registry import metric_switches, metrics, switched_on

    key = load_schema()["properties"]["evaluation"]["properties"]["metrics"]
    assert key["items"]["enum"] == metric_switches()
    on = {m.name for m in metrics() if m.switch and switched_on(m, ["dynamic_degree"])}
    assert on == {"dynamic_degree", "flow_magnitude"}


def test_the_captions_name_the_columns_a_run_leaves_out_and_what_they_need():
    from t2v_core.metrics.registry import left_out

    demo = validate_config(yaml.safe_load((REPO / "config" / "demo.yaml").read_text()))
    absent = left_out(demo["evaluation"]["metrics"])
    assert "Temporal flickering (static videos) (evaluation.metrics: temporal_flickering; needs models.raft)" in absent
    assert "Warping error (evaluation.metrics: warping_error; needs models.raft)" in absent
    assert not any(line.startswith(("Frame steadiness", "Subject consistency (CLIP")) for line in absent)
    assert left_out(metric_switches()) == []
