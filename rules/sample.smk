rule sample:
    # One job per (method, motion): the models load once for all prompts and seeds.
    input:
        unpack(get_sample_input),
    output:
        directory(SAMPLES),
    log:
        f"{LOGS}/sample/{{method}}/{{motion}}.log",
    benchmark:
        f"{BENCHMARKS}/sample/{{method}}/{{motion}}.tsv"
    conda:
        "../environment.yml"
    threads: config["resources"]["sample"]["threads"]
    resources:
        **job_resources("sample"),
    params:
        sampling=lambda wildcards: sampling_settings(wildcards.method),
        prompts=lambda wildcards: motion_prompts(wildcards.motion),
        seeds=SEEDS,
        video=config["video"],
        performance=config["performance"],
    script:
        "../workflow_scripts/sample.py"
