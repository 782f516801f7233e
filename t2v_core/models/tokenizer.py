"""CLIP's BPE tokenizer files, built offline from the vocabulary that open_clip ships.

Stable Diffusion's ``tokenizer/`` folder holds ``vocab.json`` and ``merges.txt`` of OpenAI
CLIP's byte-level BPE; open_clip ships the same merges as ``bpe_simple_vocab_16e6.txt.gz``.
The vocabulary is derived from the merges exactly as OpenAI's ``SimpleTokenizer`` does:
the 256 byte symbols, the same with the end-of-word marker, one entry per merge, then the
start and end tokens (49408 entries).
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

VOCAB_SIZE = 49408
#: Number of merges OpenAI CLIP keeps from the file (49152 - 256 - 2 after the header line).
NUM_MERGES = 49152 - 256 - 2


@lru_cache
def _bytes_to_unicode() -> dict[int, str]:
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def open_clip_bpe_path() -> Path:
    import open_clip

    return Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"


def write_clip_tokenizer_files(out_dir: str | Path, bpe_path: str | Path | None = None) -> None:
    """Write ``vocab.json``, ``merges.txt`` and the tokenizer configs of CLIP into ``out_dir``."""
    bpe_path = Path(bpe_path or open_clip_bpe_path())
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : NUM_MERGES + 1]]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    if len(vocab) != VOCAB_SIZE:
        raise ValueError(f"{bpe_path}: expected a {VOCAB_SIZE}-entry vocabulary, got {len(vocab)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(
        json.dumps({token: index for index, token in enumerate(vocab)}, ensure_ascii=False)
    )
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8"
    )
    (out_dir / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
    }))
    (out_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
    }))
