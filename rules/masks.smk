rule extract_masks:
    input:
        unpack(get_mask_input),
    output:
        directory(f"{RESULTS}/masks/{{motion}}"),
    log:
        f"{LOGS}/extract_masks/{{motion}}.log",
    benchmark:
        f"{BENCHMARKS}/extract_masks/{{motion}}.tsv"
    # The longest chains first (masks -> Ours' fine-tunings -> their sampling): on a few cores
    # the short sampling jobs of the baselines then fill the gaps instead of the end of the run.
    priority: 40
    conda:
        "../environment.yml"
    threads: config["resources"]["extract_masks"]["threads"]
    resources:
        **job_resources("extract_masks"),
    params:
        masks=config["masks"],
        subject=lambda wildcards: MOTIONS[wildcards.motion]["subject"],
    script:
        "../workflow_scripts/extract_masks.py"
