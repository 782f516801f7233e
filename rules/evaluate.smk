rule evaluate:
    input:
        videos=expand(sample_path("mp4"), seed=SEEDS, allow_missing=True),
        clip=f"{MODELS}/clip",
    output:
        f"{RESULTS}/metrics/{{method}}/{{motion}}/{{prompt_id}}.csv",
    log:
        f"{LOGS}/evaluate/{{method}}/{{motion}}/{{prompt_id}}.log",
    # Seconds-long jobs: on a cluster they are bundled (group-components in profiles/slurm).
    group:
        "evaluation"
    conda:
        "../environment.yml"
    threads: config["resources"]["evaluate"]["threads"]
    resources:
        **job_resources("evaluate"),
    params:
        prompt=lambda wildcards: PROMPT_TEXT[(wildcards.motion, wildcards.prompt_id)],
        seeds=SEEDS,
        batch_size=config["evaluation"]["batch_size"],
    script:
        "../workflow_scripts/evaluate.py"


rule aggregate:
    input:
        get_metric_tables,
    output:
        table_csv=report(
            f"{RESULTS}/table.csv",
            caption="../report/table.rst",
            category="Comparison",
        ),
        table_md=f"{RESULTS}/table.md",
        plot=report(
            f"{RESULTS}/plots/metrics.png",
            caption="../report/metrics.rst",
            category="Comparison",
        ),
        videos=f"{RESULTS}/metrics/videos.csv",
        prompts=f"{RESULTS}/metrics/prompts.csv",
        motions=f"{RESULTS}/metrics/motions.csv",
    log:
        f"{LOGS}/aggregate.log",
    localrule: True
    conda:
        "../environment.yml"
    params:
        methods=METHODS,
        bootstrap_samples=config["evaluation"]["bootstrap_samples"],
        seed=config["evaluation"]["seed"],
    script:
        "../workflow_scripts/aggregate.py"
