"""The models of VBench's metrics (DINO, RAFT, LAION's aesthetic head): prepared tiny, or
downloaded (here from conftest's ``http_server`` on 127.0.0.1, serving ``torch.save``-d state
dicts of the real classes as their publishers do), and loaded by one code path."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import torch
from conftest import REPO

from t2v_core.config import load_config, validate_config
from t2v_core.download import ChecksumError
from t2v_core.models import builtin_kinds, prepare
from t2v_core.models.layout import (
    AESTHETIC_SAFETENSORS_FILE, AESTHETIC_WEIGHTS_FILE, DINO_SAFETENSORS_FILE, DINO_WEIGHTS_FILE, MARKER_FILE,
    RAFT_SAFETENSORS_FILE, RAFT_WEIGHTS_FILE,
)
from t2v_core.models.loading import load_aesthetic, load_dino, load_raft
from t2v_core.models.prepare import get_model_source, prepare_model
from t2v_core.models.tiny import TINY_CLIP, TINY_DINO

KINDS = ("dino", "raft", "aesthetic")
TINY = {"source": "tiny", "seed": 0}
LOADERS = {"dino": lambda folder: load_dino(folder)[0], "raft": load_raft, "aesthetic": load_aesthetic}
#: kind -> (our safetensors, the official .pth) in a prepared folder
WEIGHTS = {"dino": (DINO_SAFETENSORS_FILE, DINO_WEIGHTS_FILE), "raft": (RAFT_SAFETENSORS_FILE, RAFT_WEIGHTS_FILE),
           "aesthetic": (AESTHETIC_SAFETENSORS_FILE, AESTHETIC_WEIGHTS_FILE)}


def images(*shape, seed=0):
    """Images in [-1, 1] (RAFT's range; for DINO they stand for normalised ones)."""
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_tiny_dino_gives_cls_features_at_any_multiple_of_its_patch(tmp_path):
    prepare_model("dino", tmp_path / "dino", TINY)
    model, image_size = load_dino(tmp_path / "dino")
    assert image_size == 32 and not model.training
    with torch.no_grad():
        for width in (32, 48):  # 48: position embeddings interpolated (dynamic_img_size)
            x = images(3, 3, 32, width)
            features = model(x)
            assert features.shape == (3, 32)
            assert torch.allclose(features, model.forward_features(x)[:, 0])  # the CLS token, after the norm


def test_tiny_raft_gives_flows_of_the_image_size(tmp_path):
    prepare_model("raft", tmp_path / "raft", TINY)
    model = load_raft(tmp_path / "raft")
    assert not model.training
    with torch.no_grad():
        flows = model(images(1, 3, 128, 128, seed=0), images(1, 3, 128, 128, seed=1), num_flow_updates=3)
        assert len(flows) == 3 and flows[-1].shape == (1, 2, 128, 128)
        with pytest.raises(ValueError, match="at least 8 \\* 16 = 128"):  # its correlation pyramid's limit
            model(images(1, 3, 64, 64, seed=0), images(1, 3, 64, 64, seed=1))


def test_tiny_aesthetic_head_reads_the_tiny_clips_embeddings(tmp_path):
    prepare_model("aesthetic", tmp_path / "aesthetic", TINY)
    model = load_aesthetic(tmp_path / "aesthetic")
    assert not model.training and model.in_features == TINY_CLIP["embed_dim"]
    with torch.no_grad():
        assert model(images(5, TINY_CLIP["embed_dim"])).shape == (5, 1)


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_weights_follow_the_seed(tmp_path, kind):
    states = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        prepare_model(kind, tmp_path / name, {"source": "tiny", "seed": seed})
        states[name] = LOADERS[kind](tmp_path / name).state_dict()
    assert all(torch.equal(states["a"][k], states["b"][k]) for k in states["a"])
    assert not all(torch.equal(states["a"][k], states["c"][k]) for k in states["a"])


@pytest.mark.parametrize("kind", KINDS)
def test_missing_folder_or_weights_name_the_path(tmp_path, kind):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "absent")):
        LOADERS[kind](tmp_path / "absent")
    prepare_model(kind, tmp_path / kind, TINY)
    safetensors, pth = WEIGHTS[kind]
    (tmp_path / kind / safetensors).unlink()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / kind / pth)):
        LOADERS[kind](tmp_path / kind)


def served_model(kind):
    """A model of ``kind``'s real class with seeded random weights (for DINO: the tiny
    architecture, which the test gives the download in place of ViT-B/16)."""
    from torchvision.models.optical_flow import raft_small

    from t2v_core.models.dino import DinoVisionTransformer

    torch.manual_seed(3)
    if kind == "dino":  # the keys of DINO's checkpoints, in the class they are read into
        config = dict(TINY_DINO)
        image_size = config.pop("image_size")
        return DinoVisionTransformer(**config, img_size=image_size, dynamic_img_size=True)
    if kind == "raft":
        return raft_small(weights=None)
    return torch.nn.Linear(builtin_kinds.AESTHETIC_CONFIG["in_features"], 1)


@torch.no_grad()
def outputs(kind, model):
    model.eval()
    if kind == "dino":
        return [model(images(2, 3, 32, width)) for width in (32, 48)]
    if kind == "raft":
        return model(images(1, 3, 128, 128, seed=0), images(1, 3, 128, 128, seed=1), num_flow_updates=2)
    return [model(images(4, builtin_kinds.AESTHETIC_CONFIG["in_features"]))]


def serve(http_server, kind, model) -> tuple[str, str]:
    """Serve ``model``'s state dict as its publisher does (``torch.save``); (url, its sha256)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    http_server.files[f"/{kind}.pth"] = buffer.getvalue()
    return http_server.url(f"/{kind}.pth"), hashlib.sha256(buffer.getvalue()).hexdigest()


@pytest.mark.parametrize("kind", KINDS)
def test_download_loads_the_served_weights(http_server, tmp_path, monkeypatch, kind):
    monkeypatch.setattr(builtin_kinds, "DINO_CONFIG", TINY_DINO)
    model = served_model(kind)
    url, digest = serve(http_server, kind, model)
    settings = {"dino": {"url": url, "sha256": None},  # unpinned, as the default
                "raft": {"variant": "raft_small", "url": url, "sha256": digest[:8]},  # a prefix, as torchvision's
                "aesthetic": {"url": url, "sha256": digest}}[kind]
    prepare_model(kind, tmp_path / kind, {"source": "download", kind: settings})
    safetensors, pth = WEIGHTS[kind]
    assert (tmp_path / kind / pth).is_file() and not (tmp_path / kind / safetensors).exists()
    assert json.loads((tmp_path / kind / MARKER_FILE).read_text()) == {"kind": "download", "url": url,
                                                                       "sha256": digest}
    loaded = LOADERS[kind](tmp_path / kind)
    for got, want in zip(outputs(kind, loaded), outputs(kind, model), strict=True):
        assert torch.equal(got, want)


def test_wrong_aesthetic_checksum_leaves_no_folder(http_server, tmp_path):
    url, digest = serve(http_server, "aesthetic", served_model("aesthetic"))
    wrong = ("1" if digest[0] == "0" else "0") + digest[1:]
    with pytest.raises(ChecksumError, match=wrong):
        prepare_model("aesthetic", tmp_path / "models" / "aesthetic",
                      {"source": "download", "aesthetic": {"url": url, "sha256": wrong}})
    assert list((tmp_path / "models").iterdir()) == []


def test_paper_config_spells_out_the_defaults():
    defaults = validate_config({"motions": [{"name": "m", "prompts": ["a b"]}]})["models"]
    assert defaults["raft"] == {"variant": "raft_large", "sha256": "22a6c225",
                                "url": "https://download.pytorch.org/models/raft_large_C_T_V1-22a6c225.pth"}
    assert defaults["dino"]["sha256"] is None and defaults["aesthetic"]["sha256"].startswith("2cd4e60f")
    paper = load_config(REPO / "config" / "config.yaml")["models"]
    assert {kind: paper[kind] for kind in KINDS} == {kind: defaults[kind] for kind in KINDS}


def test_report_names_the_models_in_use():
    models_config = validate_config({"motions": [{"name": "m", "prompts": ["a b"]}]})["models"]
    describe = get_model_source("download").describe
    lines = "\n".join(describe(models_config, ["base", "clip", *KINDS]))
    assert "DINO: ViT-B/16" in lines and "RAFT: torchvision's raft_large" in lines and "Aesthetic predictor" in lines
    without = "\n".join(describe(models_config, ["base", "clip"]))
    assert not any(word in without for word in ("DINO", "RAFT", "Aesthetic"))


def test_what_each_download_is_pinned_to_is_stated():
    """The report's model notes: every model the paper config downloads, with the commit or
    sha256 it is pinned to, or NOT PINNED said plainly."""
    paper = load_config(REPO / "config" / "config.yaml")
    lines = get_model_source("download").describe(paper["models"], prepare.model_kind_names())
    pins = {line.split(":")[0].removeprefix("Download of "): line for line in lines if line.startswith("Download")}
    assert set(pins) == set(prepare.model_kind_names())
    assert "revision 133a221b8aa7292a167afc5127cb63fb5005638b (a commit" in pins["base"]
    assert "revision 6167b88ffe39b4441fdf2113e77b99a6f56b7906 (a commit" in pins["motion_adapter"]
    assert pins["sam"].endswith(f"sha256 {paper['models']['sam']['sha256']}")
    assert pins["aesthetic"].endswith(f"sha256 {paper['models']['aesthetic']['sha256']}")
    assert "NOT PINNED: no sha256" in pins["dino"]
    assert "pinned only to the sha256 prefix 22a6c225 (32 of 256 bits)" in pins["raft"]
    assert "NOT PINNED" in pins["clip"]
    branch = {**paper["models"], "base": {"repo_id": "CompVis/stable-diffusion-v1-4", "revision": "main"}}
    assert "NOT PINNED: a branch or tag" in prepare.download_pin("base", branch)


def test_prepare_models_logs_the_pin_of_a_download(http_server, tmp_path, caplog):
    url, digest = serve(http_server, "aesthetic", served_model("aesthetic"))
    with caplog.at_level("INFO", logger="t2v_core.models.prepare"):
        prepare_model("aesthetic", tmp_path / "aesthetic",
                      {"source": "download", "aesthetic": {"url": url, "sha256": digest}})
    assert f"aesthetic: {url}, sha256 {digest}" in caplog.text


def test_dino_interpolates_positions_as_dinos_code(tmp_path):
    """DINO's interpolate_pos_encoding (which VBench runs): bicubic by the scale factors
    ((rows + 0.1) / 14, (cols + 0.1) / 14), not timm's resampling to a size; a non-square image
    whose whole patches make the trained grid is still resampled (by 14.1 / 14), a square one is
    not."""
    import torch.nn.functional as F
    from timm.layers import resample_abs_pos_embed

    from t2v_core.models.dino import dino_position_embedding

    torch.manual_seed(0)
    pos_embed = torch.randn(1, 1 + 14 * 14, 6)
    ours = dino_position_embedding(pos_embed, 14, 22, square_image=False)
    grid = pos_embed[:, 1:].reshape(1, 14, 14, 6).permute(0, 3, 1, 2)
    by_hand = F.interpolate(grid, scale_factor=(14.1 / 14, 22.1 / 14), mode="bicubic")
    assert by_hand.shape[-2:] == (14, 22)
    torch.testing.assert_close(ours[:, 1:], by_hand.permute(0, 2, 3, 1).reshape(1, -1, 6))
    torch.testing.assert_close(ours[:, :1], pos_embed[:, :1])
    timm = resample_abs_pos_embed(pos_embed, new_size=(14, 22), old_size=(14, 14), num_prefix_tokens=1)
    assert (timm - ours).abs().max() > 0.1
    assert torch.equal(dino_position_embedding(pos_embed, 14, 14, square_image=True), pos_embed)
    assert not torch.equal(dino_position_embedding(pos_embed, 14, 14, square_image=False), pos_embed)
