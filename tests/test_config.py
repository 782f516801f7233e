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
