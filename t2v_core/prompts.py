"""Prompts of an experiment: one row per (motion, prompt), and the stable identifier that names
a prompt's files."""

from __future__ import annotations

import hashlib
import re
import unicodedata


def prompt_id(prompt: str) -> str:
    """A stable file-name-safe identifier of a prompt.

    ASCII slug of the text (for humans) plus 8 hex digits of its SHA-1 (so that prompts
    differing only in punctuation or non-ASCII characters never collide).
    """
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:60].rstrip("_")
    digest = hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:8]
    return f"{slug or 'prompt'}-{digest}"


def prompt_table(config: dict) -> list[dict]:
    """One row per (motion, prompt): motion, prompt, prompt_id."""
    return [
        {"motion": motion["name"], "prompt": prompt, "prompt_id": prompt_id(prompt)}
        for motion in config["motions"]
        for prompt in motion["prompts"]
    ]


def sample_file(sample_dir, prompt_id: str, seed: int, kind: str = "mp4") -> str:
    """Where a video of one prompt and seed lies in the folder of a (method, motion) sampling
    job: ``<sample_dir>/<prompt_id>/seed<seed>.<kind>`` (kind mp4 or gif)."""
    return f"{sample_dir}/{prompt_id}/seed{seed}.{kind}"
