rule extract_masks:
    input:
        clips=f"{DATA}/train/{{motion}}",
        sam=f"{MODELS}/sam",
    output:
        directory(f"{RESULTS}/masks/{{motion}}"),
    log:
        f"{LOGS}/extract_masks/{{motion}}.log",
    benchmark:
        f"{BENCHMARKS}/extract_masks/{{motion}}.tsv"
    conda:
        "../environment.yml"
    params:
        masks=config["masks"],
    script:
        "../workflow_scripts/extract_masks.py"
