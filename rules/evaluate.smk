rule evaluate:
    input:
        unpack(get_evaluate_input),
    output:
        f"{RESULTS}/metrics/{{method}}.csv",
    log:
        f"{LOGS}/evaluate/{{method}}.log",
    # Short jobs (CLIP on every video of a method): on a cluster they are bundled
    # (group-components in profiles/slurm).
    group:
        "evaluation"
    conda:
        "../environment.yml"
    threads: config["resources"]["evaluate"]["threads"]
    resources:
        **job_resources("evaluate"),
    params:
        prompts=all_prompts(),
        seeds=SEEDS,
        batch_size=config["evaluation"]["batch_size"],
        evaluators=RUN_EVALUATORS,
        metrics_on=config["evaluation"]["metrics"],
        # the videos' frame rate: VBench's dynamic degree reads every round(fps / 8)-th frame
        fps=config["video"]["fps"],
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
        table_md=report(
            f"{RESULTS}/table.md", caption="../report/table.rst", category="Comparison"
        ),
        table_tex=report(
            f"{RESULTS}/table.tex",
            caption="../report/table_tex.rst",
            category="Comparison",
        ),
        motions_md=report(
            f"{RESULTS}/motions.md",
            caption="../report/motions.rst",
            category="Comparison",
        ),
        metrics_png=report(
            f"{RESULTS}/plots/metrics.png",
            caption="../report/metrics.rst",
            category="Comparison",
        ),
        metrics_svg=f"{RESULTS}/plots/metrics.svg",
        heatmap_png=report(
            f"{RESULTS}/plots/motion_heatmap.png",
            caption="../report/motion_heatmap.rst",
            category="Comparison",
        ),
        heatmap_svg=f"{RESULTS}/plots/motion_heatmap.svg",
        tradeoff_png=report(
            f"{RESULTS}/plots/alignment_vs_diversity.png",
            caption="../report/tradeoff.rst",
            category="Comparison",
        ),
        tradeoff_svg=f"{RESULTS}/plots/alignment_vs_diversity.svg",
        videos=f"{RESULTS}/metrics/videos.csv",
        prompts=f"{RESULTS}/metrics/prompts.csv",
        motions=f"{RESULTS}/metrics/motions.csv",
    log:
        f"{LOGS}/aggregate.log",
    localrule: True
    conda:
        "../environment.yml"
    params:
        methods=RUN_METHODS,
        bootstrap_samples=config["evaluation"]["bootstrap_samples"],
        seed=config["evaluation"]["seed"],
        # for the captions (report/*.rst): what the models, data and metrics are, and the
        # methods' deviations from their papers, as the registries state them
        notes=report_notes(),
        deviations=report_deviations(),
        # the poster's numbers drawn beside ours only where its models were used
        poster_models=MODEL_SOURCE.is_posters(config["models"]),
        # which reading of a metric with several (the poster's diversity) the table shows
        readings=chosen_readings(config["evaluation"]),
    script:
        "../workflow_scripts/aggregate.py"
