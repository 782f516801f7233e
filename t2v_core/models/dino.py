"""DINO's ViT (facebookresearch/dino, the backbone of VBench's subject consistency) as timm's
``VisionTransformer``, whose keys are those of DINO's checkpoints, reading frames of any size as
DINO's own code reads them: the whole patches that fit (its stride-16 patch convolution drops
the rest) and its own interpolation of the position embeddings, which timm's resampling does not
reproduce (a bicubic scale factor of (n + 0.1) / grid rather than a target size; applied to
every image that is not square even when the patch grid is the trained one)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer


def whole_patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Images (N, C, H, W) cut to the patches that fit (top-left kept), as a convolution of
    stride ``patch`` reads them: a 320x512 frame resized to 224x358 is read as 224x352 by a
    ViT-B/16 (22 patches across), nothing padded."""
    height, width = x.shape[-2:]
    return x[..., : height - height % patch, : width - width % patch]


def dino_position_embedding(pos_embed: torch.Tensor, rows: int, cols: int, square_image: bool) -> torch.Tensor:
    """DINO's ``interpolate_pos_encoding``: the class token's embedding, then the trained grid's
    resized bicubic by the scale factors ((rows + 0.1) / grid, (cols + 0.1) / grid) (the 0.1
    against floating-point error, as DINO); unchanged only for a square image of the trained
    grid."""
    trained = pos_embed.shape[1] - 1
    if rows * cols == trained and square_image:
        return pos_embed
    side = int(math.sqrt(trained))
    grid = pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((rows + 0.1) / side, (cols + 0.1) / side), mode="bicubic")
    if grid.shape[-2:] != (rows, cols):
        raise ValueError(f"DINO's position interpolation gave a {tuple(grid.shape[-2:])} grid for {(rows, cols)}")
    return torch.cat([pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)], dim=1)


class DinoVisionTransformer(VisionTransformer):
    """timm's ViT (class token, no registers) with DINO's reading of any image size."""

    def forward_features(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        # whether the image (before the partial patches are dropped) is square: DINO's test
        self._square_image = x.shape[-2] == x.shape[-1]
        return super().forward_features(whole_patches(x, self.patch_embed.patch_size[0]), **kwargs)

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        batch, rows, cols, channels = x.shape
        x = torch.cat([self.cls_token.expand(batch, -1, -1), x.reshape(batch, rows * cols, channels)], dim=1)
        return self.pos_drop(x + dino_position_embedding(self.pos_embed, rows, cols, self._square_image))
