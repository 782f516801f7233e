import pytest
import yaml

from t2v_core.config import ConfigError, load_config, validate_config
from t2v_core.prompts import prompt_id, prompt_table

from conftest import REPO


def demo_config():
    return yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())


def test_paper_and_demo_configs_validate():
    paper = load_config(REPO / "config" / "config.yaml")
    assert len(paper["motions"]) == 8
    assert len(prompt_table(paper)) == 48
    assert paper["sampling"]["lamp"]["guidance_scale"] == 12.5
    demo = load_config(REPO / "config" / "tiny.yaml")
    assert demo["models"]["source"] == "tiny"


def test_defaults_are_filled():
    config = validate_config({"motions": [{"name": "m", "prompts": ["a b"]}]})
    assert config["sampling"]["num_inference_steps"] == 50
    assert config["sampling"]["ours_noise"]["shared_noise_alpha"] == 0.2
    assert config["finetune"]["ours"]["foreground_weight"] == 2.0


def test_unknown_key_is_rejected_by_name():
    config = demo_config()
    config["sampling"]["lamp"] = {"guidance_scal": 3}
    with pytest.raises(ConfigError, match="guidance_scal"):
        validate_config(config)


def test_unknown_method_is_rejected_by_name():
    config = demo_config()
    config["methods"] = ["lamp", "modelscope_t2v"]
    with pytest.raises(ConfigError, match="modelscope_t2v"):
        validate_config(config)


def test_t0_must_precede_t1():
    config = demo_config()
    config["sampling"]["text2video_zero"].update(t0=5, t1=4)
    with pytest.raises(ConfigError, match="t0 < t1"):
        validate_config(config)


@pytest.mark.parametrize("prompt", [
    "a red horse runs in the sky", "fireworks, grass land", "it's a café — ☕ time", "a/b\\c:d*e?",
])
def test_prompt_id_is_file_name_safe_and_stable(prompt):
    pid = prompt_id(prompt)
    assert pid == prompt_id(prompt)
    assert all(c.isalnum() or c in "_-" for c in pid) and pid.isascii()


def test_prompt_ids_differ_for_punctuation_variants():
    assert prompt_id("fireworks, grass land") != prompt_id("fireworks grass land")


def test_key_order_of_a_config_file_does_not_matter():
    config = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    reordered = {key: config[key] for key in reversed(list(config))}
    reordered["video"] = {key: config["video"][key] for key in reversed(list(config["video"]))}
    a, b = validate_config(config), validate_config(reordered)
    assert a == b and list(a) == list(b) == sorted(a)
    assert repr(a["video"]) == repr(b["video"])  # what Snakemake compares for params
    assert list(load_config(REPO / "config" / "tiny.yaml")["video"]) == sorted(config["video"])


def _with(edit):
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    edit(config)
    return config


def test_own_clips_with_a_generated_data_source_are_refused_not_ignored(tmp_path):
    # the demo's toy source generates every motion's clips: a local_dir there would be ignored
    def own_clips(config):
        config["motions"][0]["source"] = {"local_dir": str(tmp_path)}

    with pytest.raises(ConfigError, match=r"motions.moves_right.source: local_dir .* would be ignored: "
                                          r"data.source 'toy'"):
        validate_config(_with(own_clips))
    with pytest.raises(ConfigError, match=r"data.local_dir: .* would be ignored"):
        validate_config(_with(lambda config: config["data"].update(local_dir=str(tmp_path))))

    def lamp_source(config):
        own_clips(config)
        config["data"]["source"] = "lamp"
        config["models"]["source"] = "tiny"

    assert validate_config(_with(lamp_source))["motions"][0]["source"]["local_dir"] == str(tmp_path)


def test_missing_local_dir_is_refused_by_name(tmp_path):
    def missing(config):
        config["data"]["source"] = "lamp"
        config["models"]["source"] = "tiny"
        config["motions"][1]["source"] = {"local_dir": str(tmp_path / "nowhere")}

    with pytest.raises(ConfigError, match=r"motions.moves_up.source.local_dir: folder '.*nowhere' does not exist"):
        validate_config(_with(missing))


def test_duplicate_seeds_and_an_experiment_outside_results_are_refused():
    with pytest.raises(ConfigError, match=r"sampling.seeds: \[0, 0\] has non-unique elements"):
        validate_config(_with(lambda config: config["sampling"].update(seeds=[0, 0])))
    for name in ("..", ".", "../elsewhere", "a/b"):
        with pytest.raises(ConfigError, match="experiment: .* does not match"):
            validate_config(_with(lambda config: config.update(experiment=name)))
    assert validate_config(_with(lambda config: config.update(experiment="demo.v2")))["experiment"] == "demo.v2"


def test_duplicate_prompts_are_named():
    def twice(config):
        config["motions"][0]["prompts"].append("a red square moves right on a black background")

    with pytest.raises(ConfigError, match=r"motions.moves_right.prompts: 'a red square moves right on a black "
                                          r"background' is given 2 times"):
        validate_config(_with(twice))


def test_metrics_switches_are_checked():
    base = {"motions": [{"name": "m", "prompts": ["p"]}]}
    assert validate_config(base)["evaluation"]["metrics"] == ["frame_steadiness", "subject_consistency_clip"]
    with pytest.raises(ConfigError, match="sharpness"):
        validate_config({**base, "evaluation": {"metrics": ["sharpness"]}})
