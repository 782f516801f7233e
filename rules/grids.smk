# Qualitative comparison: every method's video of one prompt and seed side by side (grid),
# and contact sheets (methods as rows, evenly spaced frames of the first seed as columns).
# No "def" here: snakemake --lint flags functions mixed with rules outside common.smk.
from functools import partial

from t2v_core.grids import grid_targets

GRID_MP4 = f"{RESULTS}/grids/{{motion}}/{{prompt_id}}_seed{{seed}}.mp4"
CONTACT_SHEET = f"{RESULTS}/grids/contact_sheets/{{motion}}/{{prompt_id}}.png"

# Targets for rule all: the grid of every prompt at the first seed, and the contact sheets
# of the evaluation.contact_sheet_prompts that the config has (else of the first prompt).
get_grid_outputs = partial(
    grid_targets,
    PROMPTS,
    SEEDS[0],
    config["evaluation"]["contact_sheet_prompts"],
    GRID_MP4,
    CONTACT_SHEET,
)


rule grid:
    input:
        # every method's videos of this motion, in RUN_METHODS order
        samples=expand(SAMPLES, method=RUN_METHODS, allow_missing=True),
    output:
        mp4=report(
            GRID_MP4,
            caption="../report/grid.rst",
            category="Videos",
            subcategory="{motion}",
            labels={"prompt": "{prompt_id}", "seed": "{seed}"},
        ),
        gif=f"{RESULTS}/grids/{{motion}}/{{prompt_id}}_seed{{seed}}.gif",
    log:
        f"{LOGS}/grids/{{motion}}/{{prompt_id}}_seed{{seed}}.log",
    wildcard_constraints:
        seed=r"-?\d+",
    localrule: True
    conda:
        "../environment.yml"
    params:
        labels=LABELS,
        prompt=lambda wildcards: PROMPT_TEXT[(wildcards.motion, wildcards.prompt_id)],
        fps=config["video"]["fps"],
    script:
        "../workflow_scripts/grid.py"


rule contact_sheet:
    input:
        # every method's videos of this motion, in RUN_METHODS order
        samples=expand(SAMPLES, method=RUN_METHODS, allow_missing=True),
    output:
        report(
            CONTACT_SHEET,
            caption="../report/contact_sheet.rst",
            category="Contact sheets",
            subcategory="{motion}",
            labels={"prompt": "{prompt_id}", "seed": str(SEEDS[0])},
        ),
    log:
        f"{LOGS}/grids/contact_sheets/{{motion}}/{{prompt_id}}.log",
    localrule: True
    conda:
        "../environment.yml"
    params:
        labels=LABELS,
        prompt=lambda wildcards: PROMPT_TEXT[(wildcards.motion, wildcards.prompt_id)],
        seed=SEEDS[0],
        frames=8,
    script:
        "../workflow_scripts/contact_sheet.py"
