"""Tiny random-weight models of the real classes, saved in the real on-disk formats.

The demo and the tests cannot download Stable Diffusion, SAM, CLIP or VBench's models (DINO,
RAFT, LAION's aesthetic head). They use these instead: same classes, same folder layouts, same
files, so that every later stage loads them through exactly the code that loads the real
weights (:mod:`t2v_core.models.loading`).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import torch

from .layout import (
    AESTHETIC_CONFIG_FILE, AESTHETIC_SAFETENSORS_FILE, CLIP_CONFIG_FILE, CLIP_WEIGHTS_FILE,
    DINO_CONFIG_FILE, DINO_SAFETENSORS_FILE, RAFT_CONFIG_FILE, RAFT_SAFETENSORS_FILE, SAM_CONFIG_FILE,
    SAM_SAFETENSORS_FILE, write_marker,
)
from .tokenizer import write_clip_tokenizer_files

#: Stable Diffusion v1's DDIM settings (the scheduler config of CompVis/stable-diffusion-v1-4).
SD_SCHEDULER_CONFIG = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
    set_alpha_to_one=False, steps_offset=1, num_train_timesteps=1000,
)

#: Architecture of the tiny SAM: the real classes with a small image size and a thin ViT.
TINY_SAM = dict(
    image_size=128, patch_size=16, encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2,
    encoder_global_attn_indexes=[1], window_size=4, prompt_embed_dim=32, mlp_dim=64,
    decoder_heads=2,
)

#: Architecture of the tiny open_clip model (a ViT image tower and a text transformer).
TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
}


#: Architecture of the tiny UNet: Stable Diffusion v1's classes, two thin levels. Its attention
#: sits on the lower level (SD's is on the top three): at the paper's 320x512 frames the top
#: level's latents are 40x64, whose self-attention over 2,560 tokens per frame made one
#: denoising step of a 16-frame video take seconds on a CPU; the lower level has 640.
TINY_UNET = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=(16, 16),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32, attention_head_dim=1, norm_num_groups=4,
)
#: Architecture of the tiny VAE: four blocks, so a downsampling factor of 8 as Stable
#: Diffusion's (64x64 videos give 8x8 latents, the paper's 320x512 give 40x64), thin ones,
#: without the mid-block attention (over 2,560 latent pixels at the paper's size it was a
#: third of encoding the rehearsal's 1,468 frames of real footage on a CPU).
TINY_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(4, 4, 8, 8),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    norm_num_groups=4, sample_size=64, mid_block_add_attention=False,
)


def create_tiny_base_model(out_dir: str | Path, seed: int = 0) -> None:
    """A Stable-Diffusion-v1-shaped pipeline folder with random weights (diffusers layout)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**TINY_UNET)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(**TINY_VAE)
    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=64, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, bos_token_id=49406,
        eos_token_id=49407, pad_token_id=49407, projection_dim=32,
    ))
    tokenizer_dir = out_dir / "tokenizer"
    write_clip_tokenizer_files(tokenizer_dir)
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    pipeline = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=DDIMScheduler(**SD_SCHEDULER_CONFIG), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    pipeline.save_pretrained(out_dir, safe_serialization=True)
    write_marker(out_dir, {"kind": "tiny", "seed": seed})


def build_tiny_sam():
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    c = TINY_SAM
    grid = c["image_size"] // c["patch_size"]
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=c["encoder_depth"], embed_dim=c["encoder_embed_dim"], img_size=c["image_size"],
            mlp_ratio=4, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=c["encoder_num_heads"], patch_size=c["patch_size"], qkv_bias=True,
            use_rel_pos=True, global_attn_indexes=c["encoder_global_attn_indexes"],
            window_size=c["window_size"], out_chans=c["prompt_embed_dim"],
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=c["prompt_embed_dim"], image_embedding_size=(grid, grid),
            input_image_size=(c["image_size"], c["image_size"]), mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2, embedding_dim=c["prompt_embed_dim"], mlp_dim=c["mlp_dim"],
                num_heads=c["decoder_heads"],
            ),
            transformer_dim=c["prompt_embed_dim"], iou_head_depth=3, iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    )


def save_tiny_sam(sam, out_dir: str | Path) -> None:
    """Weights (safetensors) and config of a tiny SAM, in the layout load_sam reads."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sam.state_dict().items()}, out_dir / SAM_SAFETENSORS_FILE)
    (out_dir / SAM_CONFIG_FILE).write_text(json.dumps({"model_type": "tiny"}, indent=2))


def create_tiny_sam(out_dir: str | Path, seed: int = 0) -> None:
    """A tiny SAM with random weights."""
    torch.manual_seed(seed)
    save_tiny_sam(build_tiny_sam(), out_dir)
    write_marker(out_dir, {"kind": "tiny", "seed": seed})


def create_tiny_clip(out_dir: str | Path, seed: int = 0, image_size: int | None = None) -> None:
    """A tiny open_clip model in open_clip's ``local-dir:`` layout (config + safetensors), at
    ``image_size`` (ViT-L/14's 224, for code that resizes to it) instead of TINY_CLIP's 32."""
    import open_clip
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = TINY_CLIP if image_size is None else {
        **TINY_CLIP, "vision_cfg": {**TINY_CLIP["vision_cfg"], "image_size": image_size, "patch_size": 32}}
    model = open_clip.CLIP(**config)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, out_dir / CLIP_WEIGHTS_FILE)
    preprocess = {"size": config["vision_cfg"]["image_size"],
                  "mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}
    (out_dir / CLIP_CONFIG_FILE).write_text(
        json.dumps({"model_cfg": config, "preprocess_cfg": preprocess}, indent=2)
    )
    write_marker(out_dir, {"kind": "tiny", "seed": seed})


#: Architecture of the tiny motion adapter: AnimateDiff's ``MotionAdapter`` fitted to the tiny
#: UNet (its block widths, layers per block and norm groups).
TINY_MOTION_ADAPTER = dict(
    block_out_channels=TINY_UNET["block_out_channels"], motion_layers_per_block=1, motion_num_attention_heads=1,
    motion_norm_num_groups=TINY_UNET["norm_num_groups"], motion_max_seq_length=32, use_motion_mid_block=True,
)


def create_tiny_motion_adapter(out_dir: str | Path, seed: int = 0) -> None:
    """A tiny diffusers ``MotionAdapter`` with random weights (the layout of a motion-adapter repository)."""
    from diffusers import MotionAdapter

    torch.manual_seed(seed + 3)
    MotionAdapter(**TINY_MOTION_ADAPTER).save_pretrained(out_dir, safe_serialization=True)
    write_marker(out_dir, {"kind": "tiny", "seed": seed})


#: Architecture of the tiny DINO: timm's ``VisionTransformer`` kwargs (as the real ViT-B/16's,
#: thinner and shallower) and the image size of its position embeddings.
TINY_DINO = dict(patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=0, image_size=32)


def _save_tiny(model, out_dir: Path, weights_file: str, config_file: str, config: dict, seed: int) -> None:
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out_dir / weights_file)
    (out_dir / config_file).write_text(json.dumps(config, indent=2))
    write_marker(out_dir, {"kind": "tiny", "seed": seed})


def create_tiny_dino(out_dir: str | Path, seed: int = 0) -> None:
    """A tiny DINO backbone: timm's ``VisionTransformer`` (the class the real one loads into)
    with random weights."""
    from timm.models.vision_transformer import VisionTransformer

    config = dict(TINY_DINO)
    image_size = config.pop("image_size")
    torch.manual_seed(seed)
    model = VisionTransformer(**config, img_size=image_size)
    _save_tiny(model, Path(out_dir), DINO_SAFETENSORS_FILE, DINO_CONFIG_FILE, TINY_DINO, seed)


#: Architecture of the tiny RAFT: torchvision's ``RAFT`` class with thin encoders, a one-pixel
#: correlation lookup radius and a small update block. The correlation pyramid keeps RAFT's four
#: levels (and so its 128-pixel minimum side). torchvision's raft_small took ~5 s per pair of
#: the paper's 320x512 frames on a CPU core, too slow for the rehearsal's 600 pairs.
TINY_RAFT = dict(encoder_layers=(8, 8, 8, 8, 16), corr_levels=4, corr_radius=1, motion_corr_layers=(8,),
                 motion_flow_layers=(8, 8), motion_out_channels=12, hidden_size=8, flow_head_hidden_size=8)


def build_raft(variant: str, architecture: dict | None = None):
    """torchvision's RAFT: ``raft_large`` or ``raft_small`` as torchvision builds them, or
    ``tiny``, the same class from ``architecture`` (TINY_RAFT's keys)."""
    from torchvision.models.optical_flow import raft_large, raft_small
    from torchvision.models.optical_flow.raft import (
        RAFT, CorrBlock, FeatureEncoder, FlowHead, MotionEncoder, RecurrentBlock, ResidualBlock, UpdateBlock,
    )

    if variant != "tiny":
        return {"raft_large": raft_large, "raft_small": raft_small}[variant](weights=None)
    a = {**TINY_RAFT, **(architecture or {})}
    layers = tuple(a["encoder_layers"])
    corr = CorrBlock(num_levels=a["corr_levels"], radius=a["corr_radius"])
    motion = MotionEncoder(in_channels_corr=corr.out_channels, corr_layers=tuple(a["motion_corr_layers"]),
                           flow_layers=tuple(a["motion_flow_layers"]), out_channels=a["motion_out_channels"])
    # as torchvision's builders: the context encoder's output is split into the GRU's hidden
    # state and its context input
    recurrent = RecurrentBlock(input_size=motion.out_channels + layers[-1] - a["hidden_size"],
                               hidden_size=a["hidden_size"], kernel_size=(3,), padding=(1,))
    return RAFT(
        feature_encoder=FeatureEncoder(block=ResidualBlock, layers=layers, norm_layer=torch.nn.InstanceNorm2d),
        context_encoder=FeatureEncoder(block=ResidualBlock, layers=layers, norm_layer=None),
        corr_block=corr,
        update_block=UpdateBlock(motion_encoder=motion, recurrent_block=recurrent,
                                 flow_head=FlowHead(in_channels=a["hidden_size"], hidden_size=a["flow_head_hidden_size"])),
    )


def create_tiny_raft(out_dir: str | Path, seed: int = 0) -> None:
    """torchvision's RAFT class at TINY_RAFT's size, random weights."""
    torch.manual_seed(seed)
    model = build_raft("tiny")
    _save_tiny(model, Path(out_dir), RAFT_SAFETENSORS_FILE, RAFT_CONFIG_FILE,
               {"variant": "tiny", "architecture": TINY_RAFT}, seed)


def create_tiny_aesthetic(out_dir: str | Path, seed: int = 0) -> None:
    """A random aesthetic head on the tiny CLIP's image embeddings (its ``embed_dim`` wide)."""
    in_features = TINY_CLIP["embed_dim"]
    torch.manual_seed(seed)
    model = torch.nn.Linear(in_features, 1)
    _save_tiny(model, Path(out_dir), AESTHETIC_SAFETENSORS_FILE, AESTHETIC_CONFIG_FILE,
               {"in_features": in_features}, seed)
