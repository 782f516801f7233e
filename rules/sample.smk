rule sample:
    # One job per (method, motion, prompt): the models load once for all seeds.
    input:
        unpack(get_sample_input),
    output:
        mp4=expand(sample_path("mp4"), seed=SEEDS, allow_missing=True),
        gif=expand(sample_path("gif"), seed=SEEDS, allow_missing=True),
    log:
        f"{LOGS}/sample/{{method}}/{{motion}}/{{prompt_id}}.log",
    benchmark:
        f"{BENCHMARKS}/sample/{{method}}/{{motion}}/{{prompt_id}}.tsv"
    conda:
        "../environment.yml"
    threads: config["resources"]["sample"]["threads"]
    resources:
        **job_resources("sample"),
    params:
        sampling=lambda wildcards: sampling_settings(wildcards.method),
        prompt=lambda wildcards: PROMPT_TEXT[(wildcards.motion, wildcards.prompt_id)],
        seeds=SEEDS,
        video=config["video"],
    script:
        "../workflow_scripts/sample.py"
