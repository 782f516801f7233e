rule download_lamp_fewshot:
    output:
        directory(f"{DATA}/lamp_fewshot"),
    log:
        f"{LOGS}/download_lamp_fewshot.log",
    # The data checks run before anything else: a clip or first frame that cannot be used
    # stops the run before hours of fine-tuning, not after.
    priority: 50
    retries: 2
    localrule: True
    conda:
        "../environment.yml"
    params:
        folder_id=config["data"]["gdrive_folder_id"],
    script:
        "../workflow_scripts/download_lamp_fewshot.py"


rule download_motion_source:
    output:
        directory(f"{DATA}/downloads/{{motion}}"),
    log:
        f"{LOGS}/download_motion_source/{{motion}}.log",
    # The data checks run before anything else: a clip or first frame that cannot be used
    # stops the run before hours of fine-tuning, not after.
    priority: 50
    retries: 2
    localrule: True
    conda:
        "../environment.yml"
    params:
        source=lambda wildcards: own_download(wildcards.motion),
    script:
        "../workflow_scripts/download_motion_source.py"


rule prepare_clips:
    input:
        source=clip_source,
    output:
        # the training clips (the clips' kept shots) with the clip report
        report(
            directory(f"{DATA}/train/{{motion}}"),
            patterns=["clip_report.{ext}"],
            caption="../report/clip_report.rst",
            category="Training clips",
            subcategory="{motion}",
        ),
    log:
        f"{LOGS}/prepare_clips/{{motion}}.log",
    # The data checks run before anything else: a clip or first frame that cannot be used
    # stops the run before hours of fine-tuning, not after.
    priority: 50
    localrule: True
    conda:
        "../environment.yml"
    params:
        data=config["data"],
        motion=lambda wildcards: motion_data(wildcards.motion),
        num_frames=config["video"]["num_frames"],
        fps=config["video"]["fps"],
        local_dir=lambda wildcards: local_clip_dir(wildcards.motion),
        expected_sums=lambda wildcards: MANIFEST["fewshot"].get(wildcards.motion, {}),
    script:
        "../workflow_scripts/prepare_clips.py"


rule prepare_first_frame:
    output:
        f"{DATA}/first_frames/{{motion}}/{{prompt_id}}.png",
    log:
        f"{LOGS}/prepare_first_frame/{{motion}}/{{prompt_id}}.log",
    # The data checks run before anything else: a clip or first frame that cannot be used
    # stops the run before hours of fine-tuning, not after.
    priority: 50
    retries: 2
    localrule: True
    conda:
        "../environment.yml"
    params:
        data=config["data"],
        motion=lambda wildcards: motion_data(wildcards.motion),
        prompt=lambda wildcards: PROMPT_TEXT[(wildcards.motion, wildcards.prompt_id)],
        size=[config["video"]["height"], config["video"]["width"]],
        sha256=lambda wildcards: first_frame_sha256(
            wildcards.motion, wildcards.prompt_id
        ),
    script:
        "../workflow_scripts/prepare_first_frame.py"
