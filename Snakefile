# Adapting text-to-image diffusion models for video: the whole study as one DAG.
#   snakemake --cores 8 all                                   (paper, config/config.yaml)
#   snakemake all --cores 2 --configfile config/demo.yaml     (embedded CPU demo)
from snakemake.utils import min_version

min_version("9.0")


# Without --configfile the paper's experiment; a config given on the command line replaces
# it entirely (no merging, so a demo never inherits paper settings by accident).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/data.smk"
include: "rules/masks.smk"
include: "rules/finetune.smk"
include: "rules/sample.smk"
include: "rules/evaluate.smk"
include: "rules/grids.smk"
include: "rules/disk_usage.smk"


rule all:
    default_target: True
    input:
        get_kept_products(),
        get_final_outputs(),
        get_grid_outputs(),
