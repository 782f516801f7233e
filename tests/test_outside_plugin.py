"""An outside package adds a method, a fine-tuning and a metric with a model kind of its own,
and the workflow runs them with no file of this project edited: tests/plugin_package, installed
with pip into a folder of its own that only these tests' processes see (PYTHONPATH), so that
the other tests' registries stay the project's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, copy_workflow

PACKAGE = Path(__file__).resolve().parent / "plugin_package"
#: tiny.yaml's first motion, the plugin's two methods with settings of their own, its metric.
OVERLAY = {
    "methods": ["still", "two_rates"],
    "motions": yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())["motions"][:1],
    "sampling": {"still": {"fade": 0.5}},
    "finetune": {"two_rates": {"attention_learning_rate": 1.0e-3, "conv_learning_rate": 2.0e-4}},
    "evaluation": {"metrics": ["probe_score"]},
}


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict:
    """The environment of a process that has the package installed (pip, offline: the build
    backend is this environment's setuptools)."""
    root = tmp_path_factory.mktemp("plugin")
    source, site = root / "source", root / "site"
    # built from a copy: setuptools leaves build/ and *.egg-info beside the sources
    shutil.copytree(PACKAGE, source)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(site), str(source)], check=True)
    assert list(site.glob("t2v_example_plugin-*.dist-info")) or list(site.glob("t2v_example_plugin*"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def python(env, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_the_package_registers_its_method_fine_tuning_metric_and_model_kind(plugin_env, tmp_path):
    code = ("import json; from t2v_core.config import load_schema; from t2v_core.methods import method_names, "
            "default_methods; s = load_schema()['properties']; print(json.dumps([method_names(), default_methods(), "
            "s['sampling']['properties']['still'], s['finetune']['properties']['two_rates'], "
            "s['models']['properties']['colour_probe'], s['evaluation']['properties']['metrics']['items']['enum']]))")
    result = python(plugin_env, code)
    assert result.returncode == 0, result.stderr
    names, defaults, still, two_rates, probe, switches = json.loads(result.stdout)
    assert {"still", "two_rates"} <= set(names) and {"still", "two_rates"} <= set(defaults)
    assert still["properties"]["fade"]["default"] == 0.0 and still["additionalProperties"] is False
    assert set(two_rates["properties"]) == {"init", "attention_learning_rate", "conv_learning_rate"}
    assert set(probe["properties"]) == {"url", "sha256"}
    assert "probe_score" in switches
    # the overlay validates with the package, and without it the error names what is missing
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(OVERLAY))
    check = ("import sys, yaml; from snakemake.utils import update_config; from t2v_core.config import validate_config; "
             "c = yaml.safe_load(open(sys.argv[1])); update_config(c, yaml.safe_load(open(sys.argv[2]))); "
             "print(validate_config(c)['sampling']['still'])")
    args = [str(REPO / "config" / "tiny.yaml"), str(tmp_path / "overlay.yaml")]
    run = subprocess.run([sys.executable, "-c", check, *args], env=plugin_env, capture_output=True, text=True)
    assert run.returncode == 0 and "'fade': 0.5" in run.stdout, run.stderr
    without = subprocess.run([sys.executable, "-c", check, *args], capture_output=True, text=True)
    assert without.returncode != 0 and "'still' is not one of" in without.stderr


@pytest.mark.slow
def test_the_workflow_runs_the_packages_additions_end_to_end(plugin_env, tmp_path):
    workdir = copy_workflow(tmp_path)
    (workdir / "plugin.yaml").write_text(yaml.safe_dump(OVERLAY))
    run = subprocess.run([sys.executable, "-m", "snakemake", "all", "--cores", "2", "--configfile",
                          "config/tiny.yaml", "plugin.yaml"], cwd=workdir, env=plugin_env, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    results = workdir / "results" / "tiny"
    table = pd.read_csv(results / "table.csv")
    assert list(table["method"]) == ["still", "two_rates"] and "probe_score" in table.columns

    from t2v_core.prompts import sample_file
    from t2v_core.video_io import read_video

    # the metric: the package's probe, from the folder prepare_models made for its model kind
    from safetensors.numpy import load_file

    probe = load_file(str(results / "models" / "colour_probe" / "probe.safetensors"))
    scores = pd.read_csv(results / "metrics" / "still.csv")
    samples = results / "samples" / "still" / OVERLAY["motions"][0]["name"]
    for row in scores.itertuples():
        frames = read_video(sample_file(samples, row.prompt_id, row.seed, "mp4"))
        by_hand = np.mean(frames.reshape(len(frames), -1, 3).mean(axis=1) / 255.0 @ probe["weight"][0]
                          + probe["bias"][0])
        assert row.probe_score == pytest.approx(by_hand, abs=1e-9)
        # the method's own setting reached it: the last frame is half as bright as the first
        assert frames[-1].mean() / frames[0].mean() == pytest.approx(0.5, abs=0.05)
    # the fine-tuning: two parameter groups at the learning rates of the overlay
    info = json.loads((results / "finetune" / "two_rates" / OVERLAY["motions"][0]["name"] / "adapter"
                       / "training.json").read_text())
    assert {name: group["learning_rate"] for name, group in info["parameter_groups"].items()} == \
        {"attention": 1.0e-3, "convolution": 2.0e-4}
    assert all(group["tensors"] > 0 for group in info["parameter_groups"].values())


def test_the_readme_shows_the_package_in_full():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    files = sorted(p for p in PACKAGE.rglob("*") if p.is_file() and "egg-info" not in str(p) and "build" not in p.parts
                   and "__pycache__" not in p.parts)
    assert len(files) == 5
    for path in files:
        assert f"`{path.relative_to(PACKAGE)}`:\n\n```" in readme and path.read_text(encoding="utf-8") in readme, path
