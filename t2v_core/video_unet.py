"""A video UNet built around diffusers' ``UNet2DConditionModel`` (not a fork of it).

A clip of F frames runs as a batch of F images through the 2D UNet. The temporal modules are
attached to :class:`VideoUNet`'s own structural copy of the UNet (new module objects whose
weights share storage with the original), so the pretrained 2D weights load unchanged and the
UNet that was passed in is never changed: no hook, wrapper or attention processor is left on it,
and two video models built on one UNet do not see each other's modules. On the copy, layers are
wrapped (as PEFT wraps them), not hooked: a module call with forward hooks takes PyTorch's slow
path, and a wrapper shows in the module tree what runs.

- selected 2D convolutions are wrapped (:class:`TemporalConv2d`) to add a gated causal
  temporal 1D conv after them (:class:`TemporalConvBranch`);
- each transformer block's self-attention (``attn1``) gets a processor that reads keys and
  values from the first frame only (:class:`FirstFrameAttnProcessor`), with its own
  trainable query projection;
- each transformer block is wrapped (:class:`TemporalTransformerBlock`) to add a temporal
  self-attention over the F frames at every spatial position (:class:`TemporalAttention`).

Everything trainable lives in :class:`TemporalAdapter`, a small ``ModelMixin`` +
``ConfigMixin`` model saved as safetensors + config (like diffusers' ``MotionAdapter``): a
fine-tuned method is stored as this delta, never as a copy of the whole pipeline.
"""

from __future__ import annotations

import copy
import re

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention
from torch import nn

#: 2D convolutions followed by a temporal conv: as LAMP's reference, every 2D conv of the UNet
#: (conv_in, conv_out, the ResNet blocks' conv1/conv2/conv_shortcut, down- and upsamplers), but
#: not the transformers' 1x1 proj_in/proj_out.
DEFAULT_CONV_PATTERN = (
    r"^(conv_in|conv_out|.*resnets\.\d+\.(conv1|conv2|conv_shortcut)|.*(downsamplers|upsamplers)\.\d+\.conv)$"
)
#: Trainable parameters, selected by name (LAMP's ``trainable_modules``: conv1d, conv_gate,
#: attn_temp, attn1.to_q). The temporal attention's LayerNorm stays frozen, as in the reference.
TRAINABLE_PATTERNS = (
    r"^temporal_convs\.[^.]+\.(conv|gate)\.",
    r"^temporal_attentions\.[^.]+\.attn\.",
    r"^first_frame_queries\.",
)


def _key(module_name: str) -> str:
    """Module names contain dots, which ``nn.ModuleDict`` keys may not."""
    return module_name.replace(".", "-")


class FrameContext:
    """The number of frames of the batch being processed, read by the temporal wrappers."""

    def __init__(self) -> None:
        self.num_frames = 1


class TemporalConvBranch(nn.Module):
    """Gated causal temporal convolution added to a 2D convolution's output (LAMP).

    ``out = y + sigmoid(gate(y)) * t`` with ``y`` the 2D conv's output, ``gate`` a 3x3 conv
    to one channel (broadcast over channels) and ``t = conv1d(y)`` over frames, causal with
    zero padding: frame f sees frames f-2..f.

    Both the 1D conv and the gate conv start at zero, as in LAMP's reference (whose
    UNet3DConditionModel zeroes every Conv1d): the branch adds exactly 0 until trained, with
    the gate at sigmoid(0) = 0.5. Quirk kept from the reference: at step 0 only the 1D conv
    receives a gradient (the gate's gradient is multiplied by t = 0).
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(channels, channels, kernel_size)
        self.gate = nn.Conv2d(channels, 1, kernel_size=3, padding=1)
        for layer in (self.conv, self.gate):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, y: torch.Tensor, num_frames: int) -> torch.Tensor:
        bf, c, h, w = y.shape
        b = bf // num_frames
        # The 1D conv over frames at every pixel, run as one 2D convolution with a (k, 1)
        # kernel on a (B, C, F, H*W) view: the same weights (saved adapters load unchanged)
        # without permuting every pixel's frames into a (B*H*W, C, F) batch and back. A 2D,
        # not a 3D, convolution: on CPUs PyTorch has no fast 3D one (1.3-1.9x slower here).
        frames = F.pad(y.reshape(b, num_frames, c, h * w).transpose(1, 2), (0, 0, self.kernel_size - 1, 0))
        t = F.conv2d(frames, self.conv.weight[..., None], self.conv.bias)
        t = t.transpose(1, 2).reshape(bf, c, h, w)
        return torch.addcmul(y, torch.sigmoid(self.gate_logits(y)), t)

    def gate_logits(self, y: torch.Tensor) -> torch.Tensor:
        """``gate(y)``, (B*F, 1, H, W). On CPUs a 3x3 convolution to one channel runs on PyTorch's
        slow path; there the same sum runs as a 1x1 convolution to the kernel's nine taps (one
        GEMM) whose maps ``fold`` adds up shifted (the taps flipped: fold scatters where conv
        gathers): the same weights, equal to the convolution to ~1e-7, 0.24-0.42 of the
        convolution's time forward and backward. On GPUs cuDNN's convolution is the faster
        (fold's kernels made the paper-shape step 13% slower on an H200)."""
        if y.device.type != "cpu":
            return self.gate(y)
        bf, c, h, w = y.shape
        taps = F.conv2d(y, self.gate.weight[0].flip(1, 2).reshape(c, 9).t()[..., None, None])
        return F.fold(taps.reshape(bf, 9, h * w), (h, w), 3, padding=1) + self.gate.bias[:, None, None]


class TemporalAttention(nn.Module):
    """Residual self-attention over the frames at each spatial position: x + attn(norm(x)).

    As LAMP's ``attn_temp``: placed after the feed-forward, no positional encoding, no causal
    mask, output weight zero-initialised. LAMP quirk (``init="reference"``): the output bias
    keeps PyTorch's default (non-zero) initialisation, so the untrained video model is *not*
    the image model; ``init="identity"`` zeroes the bias too.
    """

    def __init__(self, dim: int, heads: int = 8, init: str = "reference") -> None:
        super().__init__()
        heads = heads if dim % heads == 0 else 1
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(query_dim=dim, heads=heads, dim_head=dim // heads, bias=False)
        nn.init.zeros_(self.attn.to_out[0].weight)
        if init == "identity":
            nn.init.zeros_(self.attn.to_out[0].bias)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        bf, n, c = x.shape
        b = bf // num_frames
        t = x.reshape(b, num_frames, n, c).permute(0, 2, 1, 3).reshape(b * n, num_frames, c)
        t = self.attn(self.norm(t))
        t = t.reshape(b, n, num_frames, c).permute(0, 2, 1, 3).reshape(bf, n, c)
        return x + t


class FirstFrameAttnProcessor:
    """Self-attention whose keys and values come from the first frame of each clip.

    Queries come from every frame (through ``to_q`` when given, the adapter's trainable copy
    of ``attn.to_q``); keys and values are computed once, from frame 1, and shared by all
    frames. Frame 1 therefore attends to itself exactly as in the image model.
    """

    def __init__(self, context: FrameContext, to_q: nn.Linear | None = None) -> None:
        self.context = context
        self.to_q = to_q

    def __call__(self, attn: Attention, hidden_states, encoder_hidden_states=None,
                 attention_mask=None, temb=None, *args, **kwargs):
        frames = self.context.num_frames
        bf, n, _ = hidden_states.shape
        b = bf // frames
        query = (self.to_q or attn.to_q)(hidden_states)
        first = hidden_states.reshape(b, frames, n, -1)[:, 0]
        key, value = attn.to_k(first), attn.to_v(first)
        heads = attn.heads
        head_dim = key.shape[-1] // heads

        def split(x):  # (b, tokens, heads*dim) -> (b, heads, tokens, dim)
            return x.reshape(b, -1, heads, head_dim).transpose(1, 2)

        # every frame of a clip attends to the same keys: the clip's frames are one sequence of
        # frames * n queries, one attention call per clip and no per-frame copy of the keys
        query = split(query.reshape(b, frames * n, -1))
        out = F.scaled_dot_product_attention(query, split(key), split(value))
        out = out.transpose(1, 2).reshape(bf, n, heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


class TemporalAdapter(ModelMixin, ConfigMixin):
    """The trainable part of LAMP / Ours: temporal convs + gates, temporal attentions, and
    the first-frame attention's query projections. Built to match one UNet architecture."""

    @register_to_config
    def __init__(
        self,
        conv_channels: dict[str, int],
        block_dims: dict[str, int],
        query_shapes: dict[str, list[int]],
        kernel_size: int = 3,
        temporal_attention_heads: int = 8,
        init: str = "reference",
    ) -> None:
        super().__init__()
        if init not in ("reference", "identity"):
            raise ValueError(f"TemporalAdapter init must be 'reference' or 'identity', got {init!r}")
        self.temporal_convs = nn.ModuleDict(
            {_key(n): TemporalConvBranch(c, kernel_size) for n, c in conv_channels.items()}
        )
        self.temporal_attentions = nn.ModuleDict(
            {_key(n): TemporalAttention(d, temporal_attention_heads, init) for n, d in block_dims.items()}
        )
        self.first_frame_queries = nn.ModuleDict(
            {_key(n): nn.Linear(i, o, bias=False) for n, (i, o) in query_shapes.items()}
        )

    def trainable_parameters(self):
        """(name, parameter) pairs selected by :data:`TRAINABLE_PATTERNS`."""
        patterns = [re.compile(p) for p in TRAINABLE_PATTERNS]
        return [(n, p) for n, p in self.named_parameters() if any(r.match(n) for r in patterns)]

    @classmethod
    def from_unet(cls, unet, init: str = "reference", conv_pattern: str = DEFAULT_CONV_PATTERN,
                  **kwargs) -> "TemporalAdapter":
        """An adapter for ``unet``; its query projections start as copies of ``attn1.to_q``."""
        pattern = re.compile(conv_pattern)
        conv_channels = {
            name: module.out_channels for name, module in unet.named_modules()
            if isinstance(module, nn.Conv2d) and pattern.match(name)
        }
        blocks = {n: m for n, m in unet.named_modules() if isinstance(m, BasicTransformerBlock)}
        block_dims = {n: m.attn1.to_q.in_features for n, m in blocks.items()}
        query_shapes = {f"{n}.attn1": [m.attn1.to_q.in_features, m.attn1.to_q.out_features] for n, m in blocks.items()}
        adapter = cls(conv_channels, block_dims, query_shapes, init=init, **kwargs)
        with torch.no_grad():
            for name, block in blocks.items():
                adapter.first_frame_queries[_key(f"{name}.attn1")].weight.copy_(block.attn1.to_q.weight)
        return adapter


class _Wrapped(nn.Module):
    """A layer of the video model's UNet copy with a temporal module after it. The layer's own
    attributes (``weight``, ``in_channels``, ``attn1``...) read through, so diffusers' code that
    inspects the layer finds it as it was."""

    def __init__(self, base_layer: nn.Module, temporal: nn.Module, context: FrameContext) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.temporal = temporal
        self.context = context

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_layer":
                raise
            return getattr(self.base_layer, name)


class TemporalConv2d(_Wrapped):
    """A 2D convolution followed by its :class:`TemporalConvBranch`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.base_layer(x), self.context.num_frames)


class TemporalTransformerBlock(_Wrapped):
    """A ``BasicTransformerBlock`` followed by its :class:`TemporalAttention`."""

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.temporal(self.base_layer(*args, **kwargs), self.context.num_frames)


def shared_weight_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module``'s structure (new submodules, attention processors and hook tables)
    whose parameters and buffers share storage with the original's.

    The copy's parameters are new, frozen ``Parameter`` objects over the same tensors, so
    freezing, wrapping, re-processing or moving the copy (``.to``) never reaches the original;
    only an in-place write to a weight's values would, and nothing here writes to them.
    """
    memo = {id(p): nn.Parameter(p.detach(), requires_grad=False) for p in module.parameters()}
    memo.update({id(b): b.detach() for b in module.buffers()})
    return copy.deepcopy(module, memo)


class VideoUNet(nn.Module):
    """A 2D UNet plus a :class:`TemporalAdapter`, called on latents of shape (B, C, F, H, W).

    The temporal modules wrap layers of ``self.unet``, a :func:`shared_weight_copy` of the
    ``unet`` given: the given UNet stays exactly the image model, and each ``VideoUNet`` built
    on it has its own adapter and nothing of another's. ``first_frame_attention=False`` leaves
    attn1 as in the image model (used to show that an identity-initialised adapter reproduces
    the 2D UNet frame by frame). Without an adapter it is the image model with first-frame
    (cross-frame) attention alone: Text2Video-Zero's denoiser.
    """

    def __init__(self, unet, adapter: TemporalAdapter | None = None, first_frame_attention: bool = True) -> None:
        super().__init__()
        self.unet = shared_weight_copy(unet)
        self.adapter = adapter
        self.context = FrameContext()
        self._attach(first_frame_attention)

    def _attach(self, first_frame_attention: bool) -> None:
        context, adapter = self.context, self.adapter
        blocks = {n: m for n, m in self.unet.named_modules() if isinstance(m, BasicTransformerBlock)}
        if first_frame_attention:
            # with an adapter, its trainable query projections (LAMP); without one, the image
            # model's own (Text2Video-Zero's cross-frame attention)
            for name, block in blocks.items():
                to_q = adapter.first_frame_queries[_key(f"{name}.attn1")] if adapter is not None else None
                block.attn1.set_processor(FirstFrameAttnProcessor(context, to_q))
        if adapter is None:
            return
        wraps = [(key, TemporalConv2d, branch) for key, branch in adapter.temporal_convs.items()]
        wraps += [(key, TemporalTransformerBlock, temporal) for key, temporal in adapter.temporal_attentions.items()]
        for key, wrapper, temporal in wraps:
            parent_name, _, child = key.replace("-", ".").rpartition(".")
            parent = self.unet.get_submodule(parent_name)
            setattr(parent, child, wrapper(getattr(parent, child), temporal, context))

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = sample.shape
        # the UNet runs in its weights' precision (bf16 on GPUs); latents and the scheduler's
        # arithmetic stay in the caller's (float32)
        dtype = self.unet.dtype
        x = sample.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w).to(dtype)
        timestep = torch.as_tensor(timestep, device=sample.device)
        if timestep.ndim == 0:
            timestep = timestep.expand(b)
        self.context.num_frames = f
        out = self.unet(
            x, timestep.repeat_interleave(f),
            encoder_hidden_states=encoder_hidden_states.to(dtype).repeat_interleave(f, dim=0),
        ).sample
        return out.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4).to(sample.dtype)
