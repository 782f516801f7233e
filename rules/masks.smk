rule extract_masks:
    input:
        unpack(get_mask_input),
    output:
        directory(f"{RESULTS}/masks/{{motion}}"),
    log:
        f"{LOGS}/extract_masks/{{motion}}.log",
    benchmark:
        f"{BENCHMARKS}/extract_masks/{{motion}}.tsv"
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
