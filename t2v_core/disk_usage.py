"""Where a run's disk went: the size of every stage's outputs (models, data, masks, fine-tuned
models and their checkpoints, samples, metrics, grids, tables and plots, logs), as a CSV and a
Markdown table for the report."""

from __future__ import annotations

import glob
from pathlib import Path

from .video_io import atomic_path


def folder_size(paths: list[str]) -> tuple[int, int]:
    """(bytes, files) of every file under ``paths`` (folders, files or glob patterns; missing
    ones count 0)."""
    total, files = 0, 0
    for pattern in paths:
        for match in glob.glob(pattern):
            path = Path(match)
            for file in [path] if path.is_file() else (f for f in path.rglob("*") if f.is_file()):
                total += file.stat().st_size
                files += 1
    return total, files


def disk_usage(stages: dict[str, list[str]], out_csv, out_md) -> list[dict]:
    """One row per stage (its paths as given, its files and bytes) and the total; stages are
    disjoint, so the total is their sum."""
    rows = []
    for stage, paths in stages.items():
        size, files = folder_size(list(paths))
        rows.append({"stage": stage, "paths": " ".join(paths), "files": files, "bytes": size})
    rows.append({"stage": "total", "paths": "", "files": sum(r["files"] for r in rows),
                 "bytes": sum(r["bytes"] for r in rows)})
    with atomic_path(out_csv) as tmp:
        Path(tmp).write_text("stage,paths,files,bytes\n" + "".join(
            f"{r['stage']},{r['paths']},{r['files']},{r['bytes']}\n" for r in rows))
    lines = ["| Stage | Files | MB | Where |", "|---|---|---|---|"]
    lines += [f"| {r['stage']} | {r['files']} | {r['bytes'] / 1e6:.1f} | {r['paths']} |" for r in rows]
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return rows
