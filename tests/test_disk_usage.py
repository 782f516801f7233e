"""Where a run's disk went: sizes per stage, from folders, files and glob patterns."""

import pandas as pd

from t2v_core.disk_usage import disk_usage


def test_sizes_per_stage_and_total(tmp_path):
    (tmp_path / "models" / "base").mkdir(parents=True)
    (tmp_path / "models" / "base" / "unet.safetensors").write_bytes(b"x" * 1000)
    (tmp_path / "models" / "sam.bin").write_bytes(b"x" * 234)
    for motion in ("a", "b"):
        (tmp_path / "finetune" / "lamp" / motion / "adapter").mkdir(parents=True)
        (tmp_path / "finetune" / "lamp" / motion / "adapter" / "w.safetensors").write_bytes(b"x" * 100)
        (tmp_path / "finetune" / "lamp" / motion / "loss.csv").write_bytes(b"x" * 7)
    (tmp_path / "finetune" / "lamp" / "a" / "checkpoints" / "step_2").mkdir(parents=True)
    (tmp_path / "finetune" / "lamp" / "a" / "checkpoints" / "step_2" / "o.safetensors").write_bytes(b"x" * 300)
    stages = {
        "models": [str(tmp_path / "models")],
        "fine-tuned models": [str(tmp_path / "finetune/*/*/adapter"), str(tmp_path / "finetune/*/*/loss.*")],
        "fine-tuning checkpoints": [str(tmp_path / "finetune/*/*/checkpoints")],
        "samples": [str(tmp_path / "samples")],  # not there (yet): 0
    }
    rows = disk_usage(stages, tmp_path / "usage.csv", tmp_path / "usage.md")
    table = pd.read_csv(tmp_path / "usage.csv").set_index("stage")
    assert table["bytes"].to_dict() == {"models": 1234, "fine-tuned models": 214, "fine-tuning checkpoints": 300,
                                        "samples": 0, "total": 1748}
    assert table["files"].to_dict() == {"models": 2, "fine-tuned models": 4, "fine-tuning checkpoints": 1,
                                        "samples": 0, "total": 7}
    assert rows[-1] == {"stage": "total", "paths": "", "files": 7, "bytes": 1748}
    assert "| fine-tuning checkpoints | 1 | 0.0 |" in (tmp_path / "usage.md").read_text()
