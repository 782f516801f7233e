"""Shared pieces of the benchmark suite: device description, GEMM peak, model builders,
peak-memory probes and the per-size settings.

Sizes: ``full`` is the Stable Diffusion 1.4 architecture (UNet2DConditionModel,
AutoencoderKL, CLIP ViT-L/14 text tower) with random weights; ``small`` is the tiny model of
:mod:`t2v_core.models.tiny` at the demo's size. Nothing is downloaded.
"""

from __future__ import annotations

import os
import platform
import resource
import tempfile
import threading
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent

#: Stable Diffusion v1.4's architectures (the config.json files of CompVis/stable-diffusion-v1-4).
SD14_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
)
SD14_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    norm_num_groups=32, sample_size=512,
)
SD14_TEXT = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
    num_hidden_layers=12, max_position_embeddings=77, hidden_act="quick_gelu",
    bos_token_id=0, eos_token_id=2, pad_token_id=1, projection_dim=768,
)


#: AnimateDiff's motion adapter for SD-1.x (the config.json of
#: guoyww/animatediff-motion-adapter-v1-5-2).
SD15_MOTION_ADAPTER = dict(
    block_out_channels=(320, 640, 1280, 1280), motion_layers_per_block=2, motion_num_attention_heads=8,
    motion_norm_num_groups=32, motion_max_seq_length=32, use_motion_mid_block=True,
)


def build_motion_adapter(size: str, device: str, seed: int = 0):
    """A random-weight ``MotionAdapter`` that fits the ``size`` base model."""
    from diffusers import MotionAdapter

    from t2v_core.models.tiny import TINY_MOTION_ADAPTER

    torch.manual_seed(seed)
    return MotionAdapter(**(SD15_MOTION_ADAPTER if size == "full" else TINY_MOTION_ADAPTER)).to(device)


def settings(size: str, cuda: bool) -> dict:
    """Video size and step counts of one benchmark size on one kind of device."""
    if size == "full":
        if cuda:
            return dict(size="full", num_frames=16, height=320, width=512, warmup=3, steps=10,
                        sample_steps=10, t2vz_steps=10, t0=6, t1=8, seeds=3)
        return dict(size="full", num_frames=4, height=64, width=64, warmup=2, steps=5,
                    sample_steps=3, t2vz_steps=4, t0=2, t1=3, seeds=2)
    return dict(size="small", num_frames=6, height=64, width=64, warmup=2, steps=5,
                sample_steps=6, t2vz_steps=6, t0=3, t1=4, seeds=2)


def device_info(device: str) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": device,
            "cpu_threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        info["name"] = torch.cuda.get_device_name(device)
        return info
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["name"] = f"CPU: {name} ({os.cpu_count()} logical cores)"
    return info


def sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def gemm_peak(device: str, repeats: int = 5) -> dict:
    """FLOP/s of a large matmul: fp32 2048^2 on CPU, bf16 8192^2 on CUDA (best of repeats)."""
    cuda = device.startswith("cuda")
    n, dtype = (8192, torch.bfloat16) if cuda else (2048, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    flops = 2 * n ** 3
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "repeats": repeats,
            "best_s": min(times), "median_s": sorted(times)[len(times) // 2],
            "flops_per_s": flops / min(times)}


def build_parts(size: str, device: str, seed: int = 0) -> dict:
    """Base components (unet, vae, text_encoder, tokenizer, scheduler) with random weights."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from t2v_core.models.tiny import SD_SCHEDULER_CONFIG, create_tiny_base_model
    from t2v_core.models.tokenizer import write_clip_tokenizer_files

    if size == "small":
        from t2v_core.models.loading import load_base_components

        with tempfile.TemporaryDirectory() as tmp:
            create_tiny_base_model(Path(tmp) / "base", seed=seed)
            return load_base_components(Path(tmp) / "base", device=device)
    torch.manual_seed(seed)
    parts = {"unet": UNet2DConditionModel(**SD14_UNET), "vae": AutoencoderKL(**SD14_VAE),
             "text_encoder": CLIPTextModel(CLIPTextConfig(**SD14_TEXT))}
    for module in parts.values():
        module.to(device).eval().requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        write_clip_tokenizer_files(tmp)
        parts["tokenizer"] = CLIPTokenizer.from_pretrained(tmp)
    parts["scheduler"] = DDIMScheduler(**SD_SCHEDULER_CONFIG)
    return parts


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory above the level at entry, for the block it wraps.

    CUDA: ``torch.cuda.max_memory_allocated`` (after a reset). CPU: the resident set size,
    polled every 5 ms from /proc/self/statm by a thread (``ru_maxrss`` is monotone
    over the process, so it cannot give a per-phase peak after the first phase); run with
    ``MALLOC_MMAP_THRESHOLD_`` set so that freed tensors go back to the OS.
    """

    def __init__(self, device: str, interval: float = 0.005):
        self.cuda = str(device).startswith("cuda")
        self.interval = interval
        self.peak_delta = 0

    @property
    def method(self) -> str:
        return "torch.cuda.max_memory_allocated" if self.cuda else "polled RSS (/proc/self/statm)"

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return self
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.peak_delta = torch.cuda.max_memory_allocated() - self.start
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())
            self.peak_delta = self.peak - self.start
        return False


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class RepeatedKeysFirstFrameAttnProcessor:
    """The first-frame attention as the code had it before the frames of a clip were folded
    into one query sequence: frame 1's keys and values copied to every frame, one attention
    per frame. Kept as the reference path of the sampling section."""

    def __init__(self, context, to_q=None) -> None:
        self.context, self.to_q = context, to_q

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args,
                 **kwargs):
        frames = self.context.num_frames
        bf, n, _ = hidden_states.shape
        b = bf // frames
        query = (self.to_q or attn.to_q)(hidden_states)
        first = hidden_states.reshape(b, frames, n, -1)[:, 0]
        key, value = attn.to_k(first), attn.to_v(first)
        heads = attn.heads
        head_dim = key.shape[-1] // heads

        def split(x, clips):
            return x.reshape(clips, -1, heads, head_dim).transpose(1, 2)

        out = torch.nn.functional.scaled_dot_product_attention(
            split(query, bf), split(key, b).repeat_interleave(frames, dim=0),
            split(value, b).repeat_interleave(frames, dim=0))
        out = out.transpose(1, 2).reshape(bf, n, heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def use_repeated_keys_attention(video_unet) -> None:
    """Put :class:`RepeatedKeysFirstFrameAttnProcessor` on a VideoUNet's own first-frame attentions."""
    from t2v_core.video_unet import FirstFrameAttnProcessor

    for module in video_unet.unet.modules():
        processor = getattr(module, "processor", None)
        if isinstance(processor, FirstFrameAttnProcessor):
            module.set_processor(RepeatedKeysFirstFrameAttnProcessor(processor.context, processor.to_q))


def cast_parts(parts: dict, dtype) -> dict:
    """A copy of the base components in ``dtype`` (the same dict when it is float32)."""
    import copy

    if dtype == torch.float32:
        return parts
    return {k: copy.deepcopy(v).to(dtype) if isinstance(v, torch.nn.Module) else v for k, v in parts.items()}

