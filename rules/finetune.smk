rule finetune:
    input:
        unpack(get_finetune_input),
    output:
        adapter=directory(f"{RESULTS}/finetune/{{trained}}/{{motion}}/adapter"),
        loss_csv=f"{RESULTS}/finetune/{{trained}}/{{motion}}/loss.csv",
        loss_png=f"{RESULTS}/finetune/{{trained}}/{{motion}}/loss.png",
    log:
        f"{LOGS}/finetune/{{trained}}/{{motion}}.log",
    benchmark:
        f"{BENCHMARKS}/finetune/{{trained}}/{{motion}}.tsv"
    # The longest jobs first (see extract_masks): measured on the demo with 2 cores, one core
    # idled for the last 57 s while a late fine-tuning ran alone.
    priority: 30
    conda:
        "../environment.yml"
    threads: config["resources"]["finetune"]["threads"]
    resources:
        **job_resources("finetune"),
    params:
        finetune=lambda wildcards: finetune_settings(wildcards.trained),
        video=config["video"],
        prompt=lambda wildcards: training_prompt(wildcards.motion),
        # Outside the declared outputs, so Snakemake keeps them when a killed job is re-run.
        checkpoints=f"{RESULTS}/finetune/{{trained}}/{{motion}}/checkpoints",
    script:
        "../workflow_scripts/finetune.py"
