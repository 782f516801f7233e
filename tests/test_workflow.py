"""The Snakemake workflow: the demo end to end, what re-runs after an edit, interrupted runs,
the paper DAG, lint."""

import base64
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from t2v_core.config import validate_config
from t2v_core.methods import default_methods, get_method, get_training, trainings

from conftest import copy_workflow

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
DEMO = ["--configfile", "config/tiny.yaml"]
DEFAULT_METHODS = default_methods()


def run_snakemake(cwd, *args, check=True):
    result = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout + result.stderr


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def scheduled_jobs(output: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run lists."""
    jobs = set()
    for block in re.split(r"\n(?=[ \t]*(?:local)?rule \w+:)", output):  # grouped jobs are indented
        rule = re.match(r"(?:local)?rule (\w+):", block.strip())
        if rule:
            wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            jobs.add((rule.group(1), wildcards.group(1) if wildcards else ""))
    return jobs


def edited_demo(workdir: Path, name: str, edit) -> list[str]:
    """Arguments for a dry run of the demo config changed by ``edit(config)``."""
    config = yaml.safe_load((workdir / "config" / "tiny.yaml").read_text())
    edit(config)
    (workdir / f"{name}.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return ["all", "-n", "--cores", "2", "--configfile", f"{name}.yaml"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo, run once to completion in its own working directory."""
    workdir = copy_workflow(tmp_path_factory.mktemp("demo"))
    start = time.monotonic()
    umask = os.umask(0o022)  # the usual umask: results must be readable by the group and others
    try:
        run_snakemake(workdir, "all", "--cores", "2", *DEMO)
    finally:
        os.umask(umask)
    print(f"demo ran in {time.monotonic() - start:.0f} s")
    return workdir


@pytest.mark.slow
def test_demo_runs_end_to_end_and_reruns_nothing(demo_run):
    results = demo_run / "results" / "tiny"
    table = pd.read_csv(results / "table.csv")
    methods = DEFAULT_METHODS
    assert list(table["method"]) == methods
    for metric in ("alignment", "consistency", "diversity"):
        assert table[metric].notna().all() and (table[metric].abs() <= 100).all()
    assert (table["n_videos"] == 8).all()
    assert "| LAMP |" in (results / "table.md").read_text()
    assert r"\toprule" in (results / "table.tex").read_text()
    assert "| shape_up | LAMP |" in (results / "motions.md").read_text()
    for plot in ("metrics", "motion_heatmap", "alignment_vs_diversity"):
        assert (results / "plots" / f"{plot}.png").stat().st_size > 1000
        assert "<svg" in (results / "plots" / f"{plot}.svg").read_text()[:1000]
    # prompts with commas, apostrophes and unicode survive as file names
    assert list((results / "samples" / "lamp" / "shape_right").glob("a_square_slides_right_it_s_cafe_time-*/seed1.mp4"))
    assert len(list((results / "grids").glob("*/*_seed0.mp4"))) == 4
    assert len(list((results / "grids" / "contact_sheets").glob("*/*.png"))) == 1
    assert "Nothing to be done" in run_snakemake(demo_run, "all", "--cores", "2", *DEMO, "-n")
    # where the disk went: completed fine-tunings left no checkpoint behind
    usage = pd.read_csv(results / "disk_usage.csv").set_index("stage")["bytes"]
    assert usage["fine-tuning checkpoints"] == 0 and usage["fine-tuned models"] > 0 and usage["samples"] > 0
    assert usage["total"] == usage.drop("total").sum()
    assert not list((results / "finetune").glob("*/*/checkpoints"))
    # nothing private to its owner (safetensors and temporary folders are made 0600 / 0700)
    private = [str(p.relative_to(results)) for p in results.rglob("*") if p.stat().st_mode & 0o044 != 0o044]
    assert not private
    assert list(results.rglob("*.safetensors"))


@pytest.mark.slow
def test_another_experiment_cannot_replace_the_models_of_this_one(demo_run):
    # the toy demo pointed at the tiny experiment's models folder would replace its models
    demo = yaml.safe_load((demo_run / "config" / "demo.yaml").read_text())
    demo["models"]["dir"] = "results/tiny/models"
    (demo_run / "shared_models.yaml").write_text(yaml.safe_dump(demo))
    output = run_snakemake(demo_run, "all", "-n", "--configfile", "shared_models.yaml", check=False)
    assert "models.dir 'results/tiny/models' holds another experiment's models" in output
    assert "results/tiny/models/base was prepared by experiment 'tiny'" in output
    # the same settings under another experiment's name share the folder (downloads are reused)
    tiny = yaml.safe_load((demo_run / "config" / "tiny.yaml").read_text())
    (demo_run / "renamed.yaml").write_text(yaml.safe_dump({**tiny, "experiment": "tiny_copy"}))
    output = run_snakemake(demo_run, "all", "-n", "--configfile", "renamed.yaml")
    assert "prepare_models" not in job_counts(output)
    shipped = {name: yaml.safe_load((demo_run / "config" / f"{name}.yaml").read_text())["models"].get("dir")
               for name in ("config", "demo", "tiny")}
    assert len(set(shipped.values())) == 3


@pytest.mark.slow
def test_report_embeds_the_table_plots_and_videos(demo_run):
    run_snakemake(demo_run, "all", "--report", "report.html", *DEMO)
    html = (demo_run / "report.html").read_text()
    embedded = re.findall(r'data:([a-z/+.-]+)[^,"]*;base64,([A-Za-z0-9+/=]+)', html)
    table = (demo_run / "results" / "tiny" / "table.csv").read_bytes()
    assert any(base64.b64decode(data) == table for kind, data in embedded if kind == "text/csv")
    kinds = {kind for kind, _ in embedded}
    assert {"image/png", "text/csv"} <= kinds and any(kind.startswith("video/") for kind in kinds)
    # captions state the models and seeds the numbers come from
    assert "a red square moves to the right" in html and "Comparison" in html
    # the clip report of every motion's training clips: its contact sheet and its table
    train = demo_run / "results" / "tiny" / "data" / "train" / "shape_right"
    for name, kind in (("clip_report.png", "image/png"), ("clip_report.csv", "text/csv")):
        assert any(base64.b64decode(data) == (train / name).read_bytes() for k, data in embedded if k == kind), name
    assert "Training clips" in html


def _expected(rule, **wildcards):
    return rule, ", ".join(f"{k}={v}" for k, v in wildcards.items())


def _grids(workdir, motions=("shape_right", "shape_up")):
    """The grid jobs of every prompt of ``motions`` (a grid shows every method's video)."""
    folders = [workdir / "results/tiny/samples/lamp" / motion for motion in motions]
    prompts = [p for folder in folders for p in folder.iterdir() if p.is_dir()]
    return {_expected("grid", motion=p.parent.name, prompt_id=p.name, seed=0) for p in prompts}


def changed_value(spec: dict, value):
    """Another valid value of a setting (its schema property ``spec``; ``value`` the current one)."""
    if "enum" in spec:
        return next(v for v in spec["enum"] if v != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        bigger = value + 1
        return bigger if bigger <= spec.get("maximum", bigger) else value / 2
    raise AssertionError(f"no other value for {spec}")


TINY = yaml.safe_load((Path(__file__).resolve().parent.parent / "config" / "tiny.yaml").read_text())
TINY_METHODS = validate_config(TINY)["methods"]


@pytest.mark.slow
@pytest.mark.parametrize("name", TINY_METHODS)
def test_editing_a_methods_setting_reruns_only_its_jobs(demo_run, name):
    """For every method the tiny config runs: an edit of its block sampling.<name> schedules
    its sampling and evaluation (and what shows every method: grids, table), nothing else."""
    key = "guidance_scale"  # every method has one (test_registry)
    current = validate_config(TINY)["sampling"][name][key]

    def edit(config):
        config.setdefault("sampling", {}).setdefault(name, {})[key] = changed_value({}, current)

    jobs = scheduled_jobs(run_snakemake(demo_run, *edited_demo(demo_run, f"edit_{name}", edit)))
    expected = {("aggregate", ""), ("disk_usage", ""), ("all", ""), ("contact_sheet", _expected_sheet(jobs))}
    expected |= {_expected("sample", method=name, motion=m) for m in ("shape_right", "shape_up")}
    assert jobs == expected | {_expected("evaluate", method=name)} | _grids(demo_run)


@pytest.mark.slow
@pytest.mark.parametrize("trained", sorted(trainings(TINY_METHODS)))
def test_editing_a_fine_tunings_setting_reruns_only_its_jobs(demo_run, trained):
    """For every fine-tuned model of the tiny config's methods: an edit of its block
    finetune.<name> schedules its fine-tunings and the sampling and evaluation of the methods
    that sample it, nothing else."""
    training = get_training(trained)
    key, spec = next(iter(training.settings.items()))
    current = validate_config(TINY)["finetune"][trained][key]

    def edit(config):
        config.setdefault("finetune", {}).setdefault(trained, {})[key] = changed_value(spec, current)

    jobs = scheduled_jobs(run_snakemake(demo_run, *edited_demo(demo_run, f"edit_{trained}", edit)))
    users = [m for m in TINY_METHODS if get_method(m).training == training]
    expected = {("aggregate", ""), ("disk_usage", ""), ("all", ""), ("contact_sheet", _expected_sheet(jobs))}
    for motion in ("shape_right", "shape_up"):
        expected.add(_expected("finetune", trained=trained, motion=motion))
        expected |= {_expected("sample", method=m, motion=motion) for m in users}
    assert users and jobs == expected | {_expected("evaluate", method=m) for m in users} | _grids(demo_run)


@pytest.mark.slow
def test_switching_keep_checkpoints_reruns_nothing(demo_run):
    def edit(config):
        config["finetune"]["keep_checkpoints"] = True

    assert "Nothing to be done" in run_snakemake(demo_run, *edited_demo(demo_run, "keep", edit))


def _expected_sheet(jobs):
    sheets = [w for rule, w in jobs if rule == "contact_sheet"]
    assert len(sheets) == 1
    return sheets[0]


@pytest.mark.slow
def test_adding_a_prompt_runs_only_its_motions_jobs(demo_run):
    def edit(config):
        config["motions"][1]["prompts"].append("a yellow circle floats up")

    jobs = scheduled_jobs(run_snakemake(demo_run, *edited_demo(demo_run, "new_prompt", edit)))
    new = {w for rule, w in jobs if rule == "prepare_first_frame"}
    assert len(new) == 1 and "prompt_id=a_yellow_circle_floats_up-" in next(iter(new))
    prompt_id = re.search(r"prompt_id=(\S+)", next(iter(new))).group(1).rstrip(",")
    # its first frame and grid, the sampling of its motion (one job per method and motion), whose
    # other prompts' grids show the re-sampled videos, and every method's evaluation
    expected = {("aggregate", ""), ("disk_usage", ""), ("all", ""),
                _expected("prepare_first_frame", motion="shape_up", prompt_id=prompt_id),
                _expected("grid", motion="shape_up", prompt_id=prompt_id, seed=0)} | _grids(demo_run, ["shape_up"])
    for method in DEFAULT_METHODS:
        expected |= {_expected("sample", method=method, motion="shape_up"), _expected("evaluate", method=method)}
    assert jobs == expected


@pytest.mark.slow
def test_a_damaged_sample_is_redone_by_the_command_its_error_names(demo_run):
    # deleting a video is not enough (its metrics are newer): the evaluation's error names
    # --forcerun <folder>, which redoes the sampling job and what depends on it
    folder = demo_run / "results/tiny/samples/lamp/shape_up"
    video = next(p for p in folder.iterdir() if p.is_dir()) / "seed0.mp4"
    video.unlink()
    assert "Nothing to be done" in run_snakemake(demo_run, "all", "-n", "--cores", "2", *DEMO)
    args = ["all", "-n", "--cores", "2", *DEMO, "--forcerun", "results/tiny/samples/lamp/shape_up"]
    jobs = scheduled_jobs(run_snakemake(demo_run, *args))
    assert {_expected("sample", method="lamp", motion="shape_up"), _expected("evaluate", method="lamp")} <= jobs
    assert {w for rule, w in jobs if rule in ("sample", "evaluate")} == {"method=lamp, motion=shape_up", "method=lamp"}
    run_snakemake(demo_run, *[a for a in args if a != "-n"])
    assert video.is_file()


@pytest.mark.slow
def test_changing_mask_settings_reruns_ours_but_not_lamp_or_baselines(demo_run):
    def edit(config):
        config["masks"] = {"motion_threshold": 0.12}

    jobs = scheduled_jobs(run_snakemake(demo_run, *edited_demo(demo_run, "masks", edit)))
    by_rule = {}
    for rule, wildcards in jobs:
        by_rule.setdefault(rule, set()).add(wildcards)
    assert by_rule["extract_masks"] == {"motion=shape_right", "motion=shape_up"}
    assert by_rule["finetune"] == {"trained=ours, motion=shape_right", "trained=ours, motion=shape_up"}
    sampled = {re.search(r"method=(\w+)", w).group(1) for w in by_rule["sample"]}
    assert sampled == {"ours_noise", "ours_latents"} and len(by_rule["sample"]) == 4
    assert by_rule["evaluate"] == {"method=ours_noise", "method=ours_latents"} and len(by_rule["grid"]) == 4
    assert set(by_rule) == {"extract_masks", "finetune", "sample", "evaluate", "grid", "contact_sheet",
                            "aggregate", "disk_usage", "all"}


TRAINED_METHODS = {"lamp": ["lamp"], "ours": ["ours_noise", "ours_latents"], "motionlora": ["animatediff_motionlora"]}


def _sampled(methods, motion):
    """The sampling and evaluation jobs of ``methods`` on ``motion``."""
    return {_expected("sample", method=m, motion=motion) for m in methods} | \
        {_expected("evaluate", method=m) for m in methods}


@pytest.mark.slow
def test_a_missing_product_of_any_kind_is_rebuilt_with_what_depends_on_it(demo_run):
    """rule all asks for every product a user keeps: one deleted (say by a forced re-run that
    was killed after Snakemake removed the old one) is made again by `all` alone, and then only
    what depends on it."""
    results = demo_run / "results/tiny"
    right, up = (sorted(p.name for p in (results / "samples/lamp" / m).iterdir() if p.is_dir())
                 for m in ("shape_right", "shape_up"))
    last, table = {("disk_usage", ""), ("all", "")}, {("aggregate", "")}
    sheet = {_expected("contact_sheet", motion="shape_right", prompt_id=right[0])}
    cases = {
        "models/raft": table | {("prepare_models", "model=raft")} | {_expected("evaluate", method=m) for m in DEFAULT_METHODS},
        "data/train/shape_up": table | {_expected("prepare_clips", motion="shape_up"),
                                _expected("extract_masks", motion="shape_up")}
        | {_expected("finetune", trained=t, motion="shape_up") for t in TRAINED_METHODS}
        | _sampled([m for ms in TRAINED_METHODS.values() for m in ms], "shape_up") | _grids(demo_run, ["shape_up"]),
        f"data/first_frames/shape_up/{up[0]}.png": table | {_expected("prepare_first_frame", motion="shape_up",
                                                              prompt_id=up[0])}
        | _sampled(["lamp", "ours_latents"], "shape_up") | _grids(demo_run, ["shape_up"]),
        "masks/shape_right": table | {_expected("extract_masks", motion="shape_right"),
                              _expected("finetune", trained="ours", motion="shape_right")}
        | _sampled(TRAINED_METHODS["ours"], "shape_right") | _grids(demo_run, ["shape_right"]) | sheet,
        "finetune/motionlora/shape_up/loss.png": table | {_expected("finetune", trained="motionlora", motion="shape_up")}
        | _sampled(TRAINED_METHODS["motionlora"], "shape_up") | _grids(demo_run, ["shape_up"]),
        "samples/per_frame_t2i/shape_right": table | _sampled(["per_frame_t2i"], "shape_right")
        | _grids(demo_run, ["shape_right"]) | sheet,
        "metrics/text2video_zero.csv": table | {_expected("evaluate", method="text2video_zero")},
        "metrics/prompts.csv": table,
        "plots/motion_heatmap.svg": table,
        f"grids/shape_up/{up[1]}_seed0.mp4": {_expected("grid", motion="shape_up", prompt_id=up[1], seed=0)},
        f"grids/contact_sheets/shape_right/{right[0]}.png": sheet,
        "disk_usage.md": set(),
    }
    for product, expected in cases.items():
        path, aside = results / product, demo_run / "aside"
        path.rename(aside)
        try:
            jobs = scheduled_jobs(run_snakemake(demo_run, "all", "-n", "--cores", "2", *DEMO))
        finally:
            aside.rename(path)
        assert jobs == expected | last, (product, jobs ^ expected)
    assert "Nothing to be done" in run_snakemake(demo_run, "all", "-n", "--cores", "2", *DEMO)


def _run_until(workdir, args, ready, timeout=300):
    """Start snakemake, wait until ``ready()``, then kill it and its jobs (SIGKILL, no cleanup)."""
    process = subprocess.Popen([*SNAKEMAKE, *args], cwd=workdir, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert process.poll() is None, "snakemake ended before the moment to kill it"
            assert time.monotonic() < deadline, "timed out waiting to kill snakemake"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.slow
def test_killed_finetuning_resumes_from_its_checkpoint(workflow_copy):
    config = yaml.safe_load((workflow_copy / "config" / "tiny.yaml").read_text())
    config["finetune"].update(steps=60, checkpoint_every=5)
    (workflow_copy / "long.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    relative = "results/tiny/finetune/lamp/shape_right"
    run_dir = workflow_copy / relative
    target = [f"{relative}/loss.csv", "--cores", "1", "--configfile", "long.yaml"]

    def checkpoint_at_step_10():  # only the latest checkpoint is kept
        return any(int(p.name.split("_")[1]) >= 10 for p in (run_dir / "checkpoints").glob("step_*[0-9]"))

    _run_until(workflow_copy, target, checkpoint_at_step_10)
    assert not (run_dir / "adapter").exists() and not (run_dir / "loss.csv").exists()
    # Snakemake sees the killed job as incomplete and will not take its outputs as done
    dry = run_snakemake(workflow_copy, *target, "-n")
    assert "finetune" in job_counts(dry)
    run_snakemake(workflow_copy, *target, "--unlock")  # a killed Snakemake leaves its lock
    run_snakemake(workflow_copy, *target, "--rerun-incomplete")
    log = (workflow_copy / "results/tiny/logs/finetune/lamp/shape_right.log").read_text()
    resumed = int(re.search(r"resuming from \S+ \(step (\d+)\)", log).group(1))
    assert resumed >= 10
    losses = pd.read_csv(run_dir / "loss.csv")
    assert len(losses) == 60 and (run_dir / "adapter").is_dir()
    assert not (run_dir / "checkpoints").exists()  # removed once the adapter was written


def test_paper_dag_dry_runs_with_every_job(workflow_copy):
    start = time.monotonic()
    output = run_snakemake(workflow_copy, "all", "-n", "--cores", "8")
    print(f"paper DAG dry run: {time.monotonic() - start:.1f} s")
    counts = job_counts(output)
    methods, prompts, motions = 7, 48, 8
    assert counts["sample"] == methods * motions and counts["evaluate"] == methods
    assert counts["finetune"] == 3 * motions  # LAMP, Ours, MotionLoRA
    assert counts["extract_masks"] == motions
    assert counts["prepare_first_frame"] == prompts
    assert counts["prepare_clips"] == motions
    assert counts["prepare_models"] == 7  # base, sam, clip, motion_adapter; dino, raft, aesthetic (VBench)
    assert counts["download_lamp_fewshot"] == 1
    assert counts["grid"] == prompts and counts["contact_sheet"] == 1


def test_toy_demo_dag_copies_the_shipped_models_and_scores_motion(workflow_copy):
    from t2v_core.toy import SHIPPED_MODELS

    output = run_snakemake(workflow_copy, "all", "-n", "--cores", "2", "--configfile", "config/demo.yaml")
    counts = job_counts(output)
    methods, prompts, motions = 7, 12, 4
    assert counts["prepare_models"] == 4 and "download_lamp_fewshot" not in counts
    assert counts["prepare_clips"] == motions and counts["prepare_first_frame"] == prompts
    assert counts["finetune"] == 3 * motions and counts["extract_masks"] == motions
    assert counts["sample"] == methods * motions and counts["evaluate"] == methods
    assert counts["contact_sheet"] == 4  # one per motion, as demo.yaml lists
    assert f"input: {SHIPPED_MODELS / 'base'}" in output
    assert f"input: {SHIPPED_MODELS / 'motion_adapter'}" in output


def test_unknown_config_key_stops_the_workflow(workflow_copy):
    config = yaml.safe_load((workflow_copy / "config" / "tiny.yaml").read_text())
    config["sampling"]["sedes"] = [1]
    Path(workflow_copy / "bad.yaml").write_text(yaml.safe_dump(config))
    output = run_snakemake(workflow_copy, "all", "-n", "--configfile", "bad.yaml", check=False)
    assert "sedes" in output and "Additional properties" in output


def test_lint_is_clean(workflow_copy):
    output = run_snakemake(workflow_copy, "--lint", "--configfile", "config/tiny.yaml")
    assert "Congratulations" in output
