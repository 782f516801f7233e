import os
import subprocess
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, workflow.basedir)

from t2v_core.config import validate_config
from t2v_core.data.sources import benchmark_key, generated_source
from t2v_core.data.validation import load_manifest
from t2v_core.methods import get_method, trainings
from t2v_core.metrics.registry import (
    chosen_readings,
    evaluators_for,
    get_evaluator,
    left_out,
    metrics,
    switched_on,
)
from t2v_core.models.prepare import (
    get_model_source,
    model_kind_names,
    models_dir_conflicts,
)
from t2v_core.prompts import prompt_table

# Validate against config/schema.yaml, fill defaults, reject unknown keys (all errors at once).
_validated = validate_config(config, source="workflow config")
config.clear()
config.update(_validated)

RESULTS = f"{config['results_dir']}/{config['experiment']}"
MODELS = config["models"]["dir"]
DATA = f"{RESULTS}/data"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"

# Methods, fine-tuned models, model kinds and sources, and evaluators come from the registries of
# t2v_core (methods/, models/prepare.py, metrics/registry.py): the rules name none of them.
RUN_METHODS = config["methods"]
LABELS = [get_method(method).label for method in RUN_METHODS]
TRAININGS = trainings(RUN_METHODS)
RUN_EVALUATORS = evaluators_for(config)
MODEL_SOURCE = get_model_source(config["models"]["source"])
SEEDS = config["sampling"]["seeds"]
MOTIONS = {m["name"]: m for m in config["motions"]}
PROMPTS = prompt_table(config)
PROMPT_TEXT = {(p["motion"], p["prompt_id"]): p["prompt"] for p in PROMPTS}
MANIFEST = load_manifest(config["data"]["manifest"])


def gpus_found():
    """NVIDIA GPUs visible here (CUDA_VISIBLE_DEVICES respected), without importing torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() not in ("", "-1")])
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


# Local runs: at most as many GPU jobs at once as there are GPUs (--resources gpu=N wins).
# Without a GPU the cap is left off: the jobs then run on the CPU, limited by --cores.
if workflow.local_exec and "gpu" not in workflow.global_resources:
    _gpus = gpus_found()
    if _gpus:
        workflow.register_resource("gpu", _gpus)


def job_resources(rule):
    """Memory, wall time and GPUs of a heavy rule's jobs, from config['resources']."""
    spec = config["resources"][rule]
    return {"mem_mb": spec["mem_mb"], "runtime": spec["runtime"], "gpu": spec["gpu"]}


wildcard_constraints:
    motion="|".join(MOTIONS),
    method="|".join(RUN_METHODS),
    trained="|".join(TRAININGS) or "^$",
    model="|".join(model_kind_names()),
    prompt_id=r"[a-z0-9_]+-[0-9a-f]{8}",


def model_settings(model):
    """Only the settings of one model, so that editing one re-prepares only that one."""
    return MODEL_SOURCE.settings(model, config["models"])


def model_source_folder(wildcards):
    """A folder that the model source copies (if any): an input, so that a changed one is
    copied again."""
    folder = MODEL_SOURCE.input_folder(wildcards.model, config["models"])
    return [] if folder is None else str(folder)


def report_notes():
    """Lines for the report's captions, from the registries: the models, the data, and what
    each evaluator scores and how each of its metrics is defined."""
    notes = MODEL_SOURCE.describe(config["models"], used_model_kinds())
    data_source = generated_source(config["data"]["source"])
    if data_source is not None:
        notes.append(data_source.description)
    for name in RUN_EVALUATORS:
        defined = [
            m.description
            for m in metrics(name)
            if m.in_tables and switched_on(m, config["evaluation"]["metrics"])
        ]
        notes.append(f"{get_evaluator(name).description}: " + "; ".join(defined) + ".")
    absent = left_out(config["evaluation"]["metrics"])
    if absent:
        notes.append(
            "Columns this run leaves out (evaluation.metrics does not list them; a world without "
            "their models cannot compute them): " + "; ".join(absent) + "."
        )
    for name, training in TRAININGS.items():
        loop = training.loop_settings(finetune_settings(name))
        notes.append(
            f"Fine-tuned model {name} ({training.description}): {loop['steps']} steps, "
            f"learning rate {loop['learning_rate']}, {loop['batch_size']} clip(s) per step, "
            f"stored in {config['finetune']['save_dtype']}"
        )
    return notes


def used_model_kinds():
    """The prepared models that the run's methods, fine-tunings and evaluators load."""
    kinds = {kind for method in RUN_METHODS for kind in get_method(method).models}
    kinds |= {kind for training in TRAININGS.values() for kind in training.models}
    kinds |= {kind for name in RUN_EVALUATORS for kind in get_evaluator(name).models}
    return sorted(kinds)


def check_models_dir():
    """Stop before anything runs if this experiment would replace another one's models."""
    wanted = {kind: model_settings(kind) for kind in used_model_kinds()}
    conflicts = models_dir_conflicts(MODELS, config["experiment"], wanted)
    if conflicts:
        raise WorkflowError(
            f"models.dir {MODELS!r} holds another experiment's models:\n  "
            + "\n  ".join(conflicts)
            + f"\nGive experiment {config['experiment']!r} its own models.dir (e.g. "
            f"{config['results_dir']}/{config['experiment']}/models), or delete those folders."
        )


def report_deviations():
    """Each method's departure from its paper, as its module states it."""
    return [get_method(m).deviation for m in RUN_METHODS if get_method(m).deviation]


def training_prompt(motion):
    """The caption of a motion's training clips."""
    spec = MOTIONS[motion]
    return spec.get("train_prompt") or motion.replace("_", " ")


def finetune_settings(trained):
    """Common fine-tuning settings plus this fine-tuned model's own block only (not the other
    models' blocks: editing one re-trains only that one). keep_checkpoints is left out: the
    script reads it from the config, so that switching it re-trains nothing."""
    blocks = trainings()  # every registered fine-tuned model has a block in the schema
    common = {
        k: v
        for k, v in config["finetune"].items()
        if k not in blocks and k != "keep_checkpoints"
    }
    return {**common, trained: config["finetune"][trained]}


def sampling_settings(method):
    """Grid settings plus this method's own block only (see finetune_settings)."""
    return {
        "num_inference_steps": config["sampling"]["num_inference_steps"],
        method: config["sampling"][method],
    }


def motion_data(motion):
    """What the data stage needs of a motion: not its prompts, so adding a prompt does not
    re-prepare the motion's clips and first frames (and everything trained on them)."""
    return {key: MOTIONS[motion][key] for key in ("name", "subject", "source")}


def own_download(motion):
    """The motion's own url or Google Drive source, if it has one."""
    source = MOTIONS[motion]["source"]
    return source if (source["url"] or source["gdrive_id"]) else None


def clip_source(wildcards):
    """Where prepare_clips finds a motion's clips (nothing for generated or local clips)."""
    data = config["data"]
    if generated_source(data["source"]) is not None:
        return []
    if own_download(wildcards.motion):
        return f"{DATA}/downloads/{wildcards.motion}"
    if MOTIONS[wildcards.motion]["source"]["local_dir"] or data["local_dir"]:
        return []
    return f"{DATA}/lamp_fewshot"


def local_clip_dir(motion):
    """The hand-filled folder of a motion's clips (its own local_dir, else data.local_dir)."""
    return MOTIONS[motion]["source"]["local_dir"] or config["data"]["local_dir"]


def first_frame_sha256(motion, prompt_id):
    """The manifest's sha256 of a benchmark first frame (None when it has none)."""
    key = benchmark_key(motion, PROMPT_TEXT[(motion, prompt_id)])
    return MANIFEST["benchmark"].get(key)


def get_mask_input(wildcards):
    inputs = {"clips": f"{DATA}/train/{wildcards.motion}", "sam": f"{MODELS}/sam"}
    if config["masks"]["strategy"] == "clip_subject":
        inputs["clip"] = f"{MODELS}/clip"
    return inputs


def get_finetune_input(wildcards):
    training = TRAININGS[wildcards.trained]
    inputs = {"clips": f"{DATA}/train/{wildcards.motion}"}
    inputs.update({model: f"{MODELS}/{model}" for model in training.models})
    if training.needs_masks:
        inputs["masks"] = f"{RESULTS}/masks/{wildcards.motion}"
    return inputs


def motion_prompts(motion):
    """prompt_id -> prompt of a motion's prompts, in the config's order."""
    return {p["prompt_id"]: p["prompt"] for p in PROMPTS if p["motion"] == motion}


# One sampling job per (method, motion): every prompt and seed of the motion, written into one
# folder; one evaluation job per method (a process that loads torch and diffusers takes ~7 s
# before any work; one job per prompt made that most of the demo's time). Adding a prompt
# re-runs its motion's sampling and every method's evaluation.
SAMPLES = f"{RESULTS}/samples/{{method}}/{{motion}}"


def get_sample_input(wildcards):
    method = get_method(wildcards.method)
    inputs = {model: f"{MODELS}/{model}" for model in method.models}
    if method.training is not None:
        trained = method.training.name
        inputs["adapter"] = f"{RESULTS}/finetune/{trained}/{wildcards.motion}/adapter"
    if method.needs_first_frame_image:
        inputs["first_frames"] = [
            f"{DATA}/first_frames/{wildcards.motion}/{prompt_id}.png"
            for prompt_id in motion_prompts(wildcards.motion)
        ]
    return inputs


def get_evaluate_input(wildcards):
    """The sampling folders of every motion of the method (in MOTIONS order), and the models
    of the evaluators that run."""
    models = {model for name in RUN_EVALUATORS for model in get_evaluator(name).models}
    return {
        "samples": expand(SAMPLES, method=wildcards.method, motion=MOTIONS),
        **{model: f"{MODELS}/{model}" for model in sorted(models)},
    }


def all_prompts():
    """motion -> (prompt_id -> prompt), in MOTIONS order."""
    return {motion: motion_prompts(motion) for motion in MOTIONS}


def get_metric_tables(wildcards=None):
    return [f"{RESULTS}/metrics/{method}.csv" for method in RUN_METHODS]


def disk_stages():
    """The folders (or glob patterns) of each stage's outputs, for rule disk_usage."""
    finetune = f"{RESULTS}/finetune/*/*"
    return {
        "models": [MODELS],
        "data": [DATA],
        "masks": [f"{RESULTS}/masks"],
        "fine-tuned models": [f"{finetune}/adapter", f"{finetune}/loss.*"],
        "fine-tuning checkpoints": [f"{finetune}/checkpoints"],
        "samples": [f"{RESULTS}/samples"],
        "metrics": [f"{RESULTS}/metrics"],
        "grids": [f"{RESULTS}/grids"],
        "tables and plots": [
            f"{RESULTS}/table.*",
            f"{RESULTS}/motions.md",
            f"{RESULTS}/plots",
        ],
        "logs and benchmarks": [LOGS, BENCHMARKS],
    }


def get_kept_products():
    """Everything a run makes that a user keeps, which the target "all" asks for: one that
    goes missing (deleted, or removed by a forced re-run that was killed) is made again, and
    then only what depends on it. The final outputs (tables, plots, grids) come besides.
    """
    products = [f"{MODELS}/{kind}" for kind in used_model_kinds()]
    if TRAININGS:
        products += [f"{DATA}/train/{motion}" for motion in MOTIONS]
    if any(get_method(method).needs_first_frame_image for method in RUN_METHODS):
        products += [
            f"{DATA}/first_frames/{p['motion']}/{p['prompt_id']}.png" for p in PROMPTS
        ]
    if any(training.needs_masks for training in TRAININGS.values()):
        products += [f"{RESULTS}/masks/{motion}" for motion in MOTIONS]
    for trained in TRAININGS:
        run = f"{RESULTS}/finetune/{trained}/{{motion}}"
        products += expand(
            [f"{run}/adapter", f"{run}/loss.csv", f"{run}/loss.png"], motion=MOTIONS
        )
    products += expand(SAMPLES, method=RUN_METHODS, motion=MOTIONS)
    products += get_metric_tables()
    return products + [
        f"{RESULTS}/metrics/{name}.csv" for name in ("videos", "prompts", "motions")
    ]


def get_final_outputs():
    tables = [
        "table.csv",
        "table.md",
        "table.tex",
        "motions.md",
        "disk_usage.csv",
        "disk_usage.md",
    ]
    plots = ["metrics", "motion_heatmap", "alignment_vs_diversity"]
    return [f"{RESULTS}/{name}" for name in tables] + [
        f"{RESULTS}/plots/{name}.{kind}" for name in plots for kind in ("png", "svg")
    ]


check_models_dir()
