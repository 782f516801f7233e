rule prepare_models:
    # Downloads need internet: always on the submitting (login) node, never on a compute node.
    output:
        directory(f"{MODELS}/{{model}}"),
    params:
        models=lambda wildcards: model_settings(wildcards.model),
    log:
        f"{LOGS}/prepare_models/{{model}}.log",
    localrule: True
    script:
        "../workflow_scripts/prepare_models.py"
