rule disk_usage:
    # After everything else (the table and the grids are the last outputs): where the disk went.
    input:
        table=f"{RESULTS}/table.csv",
        grids=get_grid_outputs(),
    output:
        csv=report(
            f"{RESULTS}/disk_usage.csv",
            caption="../report/disk_usage.rst",
            category="Run",
        ),
        md=f"{RESULTS}/disk_usage.md",
    log:
        f"{LOGS}/disk_usage.log",
    localrule: True
    conda:
        "../environment.yml"
    params:
        stages=disk_stages(),
    script:
        "../workflow_scripts/disk_usage.py"
