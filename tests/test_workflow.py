"""The Snakemake workflow: the demo end to end, the paper DAG, lint."""

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(cwd, *args, check=True):
    result = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout + result.stderr


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.slow
def test_demo_runs_end_to_end_and_reruns_nothing(workflow_copy):
    run_snakemake(workflow_copy, "all", "--cores", "2", "--configfile", "config/demo.yaml")
    results = workflow_copy / "results" / "demo"
    table = pd.read_csv(results / "table.csv")
    methods = yaml.safe_load((workflow_copy / "config" / "schema.yaml").read_text())["properties"]["methods"]["default"]
    assert list(table["method"]) == methods
    for metric in ("alignment", "consistency", "diversity"):
        assert table[metric].notna().all() and (table[metric].abs() <= 100).all()
    assert (table["n_videos"] == 8).all()
    assert "| LAMP |" in (results / "table.md").read_text()
    assert (results / "plots" / "metrics.png").stat().st_size > 1000
    # prompts with commas, apostrophes and unicode survive as file names
    assert list((results / "samples" / "lamp" / "shape_right").glob("a_square_slides_right_it_s_cafe_time-*/seed1.mp4"))
    dry = run_snakemake(workflow_copy, "all", "--cores", "2", "--configfile", "config/demo.yaml", "-n")
    assert "Nothing to be done" in dry


def test_paper_dag_dry_runs_with_every_job(workflow_copy):
    output = run_snakemake(workflow_copy, "all", "-n", "--cores", "8")
    counts = job_counts(output)
    methods, prompts, motions = 5, 48, 8
    assert counts["sample"] == methods * prompts
    assert counts["evaluate"] == methods * prompts
    assert counts["finetune"] == 2 * motions
    assert counts["extract_masks"] == motions
    assert counts["prepare_first_frame"] == prompts
    assert counts["prepare_models"] == 3
    assert counts["download_lamp_fewshot"] == 1


def test_unknown_config_key_stops_the_workflow(workflow_copy):
    config = yaml.safe_load((workflow_copy / "config" / "demo.yaml").read_text())
    config["sampling"]["sedes"] = [1]
    Path(workflow_copy / "bad.yaml").write_text(yaml.safe_dump(config))
    output = run_snakemake(workflow_copy, "all", "-n", "--configfile", "bad.yaml", check=False)
    assert "sedes" in output and "Additional properties" in output


def test_lint_is_clean(workflow_copy):
    output = run_snakemake(workflow_copy, "--lint", "--configfile", "config/demo.yaml")
    assert "Congratulations" in output
