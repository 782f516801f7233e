"""Model kinds are declared once, beside their code: each registered kind (a plugin's too) has its
block ``models.<kind>`` in the assembled schema, and the model sources prepare it through its
declaration."""

from __future__ import annotations

import json

import jsonschema
import pytest

from t2v_core.config import ConfigError, load_schema, validate_config
from t2v_core.models.builtin_kinds import BUILTIN_KINDS
from t2v_core.models.kinds import ModelKind
from t2v_core.models.prepare import (
    MODEL_KINDS, PREPARED_FOR_FILE, get_model_kind, get_model_source, model_kind_names, prepare_model,
    register_model_kind,
)
from t2v_core.settings import check_properties, properties

MINIMAL = {"motions": [{"name": "m", "prompts": ["a b"]}]}


def defaults(props: dict) -> dict:
    return {key: spec["default"] for key, spec in props.items()}


def test_every_model_kind_has_its_block_in_the_schema():
    """Each registered kind's block is its declaration: a one-line description, every key with
    a default and a description, and defaults that the block itself accepts."""
    models = load_schema()["properties"]["models"]["properties"]
    validated = validate_config(MINIMAL)["models"]
    assert model_kind_names(), "no model kind registered"
    for name in model_kind_names():
        kind = get_model_kind(name)
        block = models[name]
        assert block["description"] == kind.description and "\n" not in kind.description, name
        assert block["properties"] == kind.settings and block["additionalProperties"] is False, name
        assert check_properties(f"models.{name}", block["properties"]) == []
        jsonschema.validate(defaults(block["properties"]), block)
        assert validated[name] == defaults(block["properties"]), name


def test_the_built_in_kinds_come_first_in_their_order():
    assert model_kind_names()[:len(BUILTIN_KINDS)] == [kind.name for kind in BUILTIN_KINDS]


def write_tiny(work_dir, seed):
    (work_dir / "weights.json").write_text(json.dumps({"seed": seed}))


def write_download(work_dir, settings):
    (work_dir / "weights.json").write_text(json.dumps({"downloaded": settings}))


#: A model kind from outside the core, as a plugin would declare it.
PLUGIN_KIND = ModelKind(
    "test_plugin_kind", "A model kind that a test registers.",
    settings=properties("""\
width:
  type: integer
  minimum: 1
  default: 3
  description: Width of the test model.
"""),
    download=write_download,
    create_tiny=write_tiny,
    pin=lambda settings: f"width {settings['width']}, NOT PINNED",
    describe=lambda settings, source: f"Test model: width {settings['width']} ({source} weights)",
)


@pytest.fixture
def plugin_kind():
    model_kind_names()  # the plugins are loaded before, so none registers into what is removed after
    register_model_kind(PLUGIN_KIND)
    try:
        yield PLUGIN_KIND
    finally:
        MODEL_KINDS._items.pop(PLUGIN_KIND.name)


def test_a_registered_kind_gets_its_block_and_is_validated(plugin_kind):
    name = plugin_kind.name
    block = load_schema()["properties"]["models"]["properties"][name]
    assert block["properties"] == plugin_kind.settings and block["description"] == plugin_kind.description
    assert validate_config(MINIMAL)["models"][name] == defaults(plugin_kind.settings)
    with pytest.raises(ConfigError, match=rf"models.{name}.width: 0 is less than the minimum"):
        validate_config({**MINIMAL, "models": {name: {"width": 0}}})
    with pytest.raises(ConfigError, match=rf"models.{name}: Additional properties .*'height'"):
        validate_config({**MINIMAL, "models": {name: {"height": 2}}})


def test_the_model_sources_prepare_a_registered_kind_by_its_declaration(plugin_kind, tmp_path):
    name = plugin_kind.name
    prepare_model(name, tmp_path / "tiny" / name, {"source": "tiny", "seed": 7}, experiment="e")
    assert json.loads((tmp_path / "tiny" / name / "weights.json").read_text()) == {"seed": 7}
    assert json.loads((tmp_path / "tiny" / name / PREPARED_FOR_FILE).read_text())["experiment"] == "e"
    settings = {"width": 5}
    prepare_model(name, tmp_path / "download" / name, {"source": "download", name: settings})
    assert json.loads((tmp_path / "download" / name / "weights.json").read_text()) == {"downloaded": settings}


def test_the_report_describes_a_registered_kind_after_the_built_in_ones(plugin_kind):
    models = validate_config(MINIMAL)["models"]
    in_use = [plugin_kind.name, *(kind.name for kind in BUILTIN_KINDS)]
    lines = get_model_source("download").describe(models, in_use)
    described = [line for line in lines if not line.startswith("Download of ")]
    expected = plugin_kind.describe(models[plugin_kind.name], "download")
    assert described[-1] == expected  # the registry's order, not the order of the kinds given
    assert f"Download of {plugin_kind.name}: {plugin_kind.pin(models[plugin_kind.name])}" in lines
    assert expected not in get_model_source("download").describe(models, [kind.name for kind in BUILTIN_KINDS])


def test_an_unknown_kind_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown model kind 'no_such_kind'"):
        prepare_model("no_such_kind", tmp_path / "models" / "no_such_kind", {"source": "tiny", "seed": 0})
    assert not (tmp_path / "models").exists()
    with pytest.raises(ValueError, match="'no_such_kind'"):
        get_model_kind("no_such_kind")


def test_a_kind_without_defaults_or_descriptions_is_refused():
    undocumented = ModelKind("test_undocumented", "A kind whose setting lacks both.",
                             settings={"width": {"type": "integer"}}, download=write_download,
                             create_tiny=write_tiny, pin=lambda settings: "")
    with pytest.raises(ValueError, match=r"models.test_undocumented.width: no default"):
        register_model_kind(undocumented)
    assert "test_undocumented" not in model_kind_names()


def test_a_kind_named_like_a_key_of_models_is_refused():
    taken = next(key for key in load_schema()["properties"]["models"]["properties"] if key not in model_kind_names())
    register_model_kind(ModelKind(taken, "A kind named like a key.", settings={}, download=write_download,
                                  create_tiny=write_tiny, pin=lambda settings: ""))
    try:
        with pytest.raises(ValueError, match=rf"model kind '{taken}': models.{taken} is already a key"):
            load_schema()
    finally:
        MODEL_KINDS._items.pop(taken)


def test_the_toy_source_names_a_kind_it_does_not_ship(tmp_path):
    from t2v_core.toy.plugin import TOY_MODEL_KINDS

    assert set(TOY_MODEL_KINDS) <= set(model_kind_names())
    missing = next(name for name in model_kind_names() if name not in TOY_MODEL_KINDS)
    with pytest.raises(ValueError, match=rf"model kind '{missing}': models.source toy has no such model"):
        prepare_model(missing, tmp_path / missing, {"source": "toy", "toy_dir": None})
    with pytest.raises(ValueError, match=rf"'{missing}'"):
        get_model_source("toy").input_folder(missing, {"toy_dir": None})
