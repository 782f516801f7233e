rule prepare_models:
    # Downloads need internet: always on the submitting (login) node, never on a compute node.
    input:
        copied=model_source_folder,
    output:
        directory(f"{MODELS}/{{model}}"),
    log:
        f"{LOGS}/prepare_models/{{model}}.log",
    localrule: True
    conda:
        "../environment.yml"
    params:
        models=lambda wildcards: model_settings(wildcards.model),
    script:
        "../workflow_scripts/prepare_models.py"
