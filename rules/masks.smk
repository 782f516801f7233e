rule extract_masks:
    input:
        clips=f"{DATA}/train/{{motion}}",
        sam=f"{MODELS}/sam",
    output:
        directory(f"{RESULTS}/masks/{{motion}}"),
    params:
        masks=config["masks"],
    log:
        f"{LOGS}/extract_masks/{{motion}}.log",
    benchmark:
        f"{BENCHMARKS}/extract_masks/{{motion}}.tsv"
    script:
        "../workflow_scripts/extract_masks.py"
