"""Data sources: per-motion downloads (archives), the sha256 manifest, clip folders."""

import hashlib
import os
import io
import tarfile
import zipfile

import pytest
import yaml

from t2v_core.config import ConfigError, load_config, validate_config
from t2v_core.prompts import prompt_table
from t2v_core.data.sources import (
    benchmark_key, download_motion_source, extract_archive, find_motion_folder, prepare_first_frame,
    prepare_motion_clips,
)
from t2v_core.data.synthetic import render_clip
from t2v_core.data.validation import CHECKSUM_FILE, DataError, load_manifest
from t2v_core.download import ChecksumError
from t2v_core.video_io import write_mp4

from conftest import REPO, shared_data


def clip_bytes(tmp_path, name="clip.mp4", frames=8, seed=0):
    video, _ = render_clip("horse_run", "square", seed, 0, frames, 32, 32)
    write_mp4(tmp_path / name, video, fps=4)
    return (tmp_path / name).read_bytes()


def test_paper_manifest_has_a_sum_for_every_benchmark_prompt():
    config = load_config(REPO / "config" / "config.yaml")
    manifest = load_manifest(REPO / config["data"]["manifest"])
    keys = [benchmark_key(p["motion"], p["prompt"]) for p in prompt_table(config)]
    assert len(keys) == 48 and set(keys) == set(manifest["benchmark"])
    assert "33cd87a1b67bd7b469ed2a0ca8f3a013dde3cb5e" in config["data"]["benchmark_url"]


def test_manifest_sums_match_the_shared_benchmark_copy():
    root = shared_data("lamp_benchmark")
    manifest = load_manifest(REPO / "config" / "lamp_manifest.yaml")
    for key, expected in manifest["benchmark"].items():
        assert hashlib.sha256((root / key).read_bytes()).hexdigest() == expected, key


def test_bad_manifest_names_the_file_and_entries(tmp_path):
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump({"benchmark": {"a/b.png": "xyz"}, "fewshot": {"rain": {"c.mp4": 12}}}))
    with pytest.raises(DataError) as error:
        load_manifest(path)
    assert str(path) in str(error.value) and "a/b.png: 'xyz'" in str(error.value) and "c.mp4: 12" in str(error.value)
    path.write_text("checksums: {}\n")
    with pytest.raises(DataError, match="unknown manifest sections"):
        load_manifest(path)


def test_manifest_pins_the_clips_of_a_motion(tmp_path):
    folder = tmp_path / "manual" / "rain"
    folder.mkdir(parents=True)
    good = clip_bytes(folder, "a.mp4")
    clip_bytes(folder, "b.mp4", seed=1)
    data = {"source": "lamp", "damaged_run": 4, "damaged_jump": 10.0}
    expected = {"a.mp4": hashlib.sha256(good).hexdigest(), "b.mp4": "0" * 64, "c.mp4": "1" * 64}
    with pytest.raises(DataError) as error:
        prepare_motion_clips(data, {"name": "rain"}, tmp_path / "out", 6, tmp_path / "manual",
                             expected_sums=expected)
    message = str(error.value)
    assert "c.mp4: listed in the manifest but missing" in message
    assert "b.mp4: expected sha256 " + "0" * 64 in message and "a.mp4" not in message.replace(str(folder), "")
    assert not (tmp_path / "out").exists()
    # without sums the accepted clips' sums are recorded, ready to be pinned
    clips = prepare_motion_clips(data, {"name": "rain"}, tmp_path / "out", 6, tmp_path / "manual")
    assert [c.name for c in clips] == ["a.mp4", "b.mp4"]
    lines = (tmp_path / "out" / CHECKSUM_FILE).read_text().splitlines()
    assert lines[0] == f"{hashlib.sha256(good).hexdigest()}  a.mp4"


def test_motion_folder_found_at_depth_or_as_the_root(tmp_path):
    (tmp_path / "set" / "LAMP" / "horse_run").mkdir(parents=True)
    assert find_motion_folder(tmp_path / "set", "horse_run") == tmp_path / "set" / "LAMP" / "horse_run"
    clip_bytes(tmp_path / "set" / "LAMP")
    assert find_motion_folder(tmp_path / "set" / "LAMP", "rain") == tmp_path / "set" / "LAMP"
    with pytest.raises(DataError, match="no folder named 'rain'"):
        find_motion_folder(tmp_path / "set" / "LAMP" / "horse_run", "rain")


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archives_are_unpacked_and_traversal_refused(tmp_path, kind):
    payload = clip_bytes(tmp_path)
    archive = tmp_path / f"clips.{kind}"
    members = {"rain/a.mp4": payload, "../escape.mp4": payload}
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as bundle:
            for name, data in members.items():
                bundle.writestr(name, data)
    else:
        with tarfile.open(archive, "w:gz") as bundle:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                bundle.addfile(info, io.BytesIO(data))
    with pytest.raises(Exception) as error:
        extract_archive(archive, tmp_path / "out")
    assert "escape.mp4" in str(error.value) or "outside" in str(error.value)
    assert not (tmp_path / "escape.mp4").exists()


def test_per_motion_source_keys_are_validated():
    base = {"motions": [{"name": "rain", "prompts": ["a rainy day"],
                         "source": {"url": "https://example.org/rain.zip", "local_dir": "/data/rain"}}]}
    with pytest.raises(ConfigError, match=r"motions.rain.source: set only one of \['url', 'local_dir'\]"):
        validate_config(base)
    base["motions"][0]["source"] = {"url": "ftp://example.org/rain.zip"}
    with pytest.raises(ConfigError, match="motions.0.source.url"):
        validate_config(base)


def test_motion_archive_downloaded_checked_and_unpacked(http_server, tmp_path):
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("rain/a.mp4", clip_bytes(tmp_path, "a.mp4"))
        archive.writestr("rain/b.mp4", clip_bytes(tmp_path, "b.mp4", seed=1))
    http_server.files["/sets/rain.zip"] = bundle.getvalue()
    source = {"url": http_server.url("/sets/rain.zip"), "sha256": hashlib.sha256(bundle.getvalue()).hexdigest()}
    http_server.drops = 1  # the connection drops once mid-file: resumed
    download_motion_source(source, tmp_path / "downloads" / "rain", retries=3)
    clips = prepare_motion_clips({"source": "lamp", "damaged_run": 4, "damaged_jump": 10.0}, {"name": "rain"}, tmp_path / "train", 6,
                                 source_dir=tmp_path / "downloads" / "rain")
    assert [c.name for c in clips] == ["a.mp4", "b.mp4"]
    assert (tmp_path / "train" / "a.mp4").read_bytes() == (tmp_path / "a.mp4").read_bytes()
    assert [entry[1] is not None for entry in http_server.log] == [False, True]  # second asked a Range
    # a wrong sum: nothing under the final name, the error names both sums
    source["sha256"] = "f" * 64
    with pytest.raises(ChecksumError) as error:
        download_motion_source(source, tmp_path / "downloads" / "rain2", retries=1)
    assert "f" * 64 in str(error.value) and hashlib.sha256(bundle.getvalue()).hexdigest() in str(error.value)
    assert not (tmp_path / "downloads" / "rain2").exists()


def test_benchmark_first_frame_verified_against_the_manifest(http_server, tmp_path):
    png = shared_data("lamp_benchmark", "horse_run", "a_red_horse_runs_in_the_sky.png").read_bytes()
    http_server.files["/benchmark/horse_run/a_red_horse_runs_in_the_sky.png"] = png
    manifest = load_manifest(REPO / "config" / "lamp_manifest.yaml")
    data = {"source": "lamp", "benchmark_url": http_server.url("/benchmark")}
    key = benchmark_key("horse_run", "a red horse runs in the sky")
    prepare_first_frame(data, {"name": "horse_run"}, "a red horse runs in the sky", tmp_path / "f.png", 320, 512,
                        sha256=manifest["benchmark"][key])
    assert (tmp_path / "f.png").read_bytes() == png
    http_server.files["/benchmark/horse_run/a_red_horse_runs_in_the_sky.png"] = png[:-10] + b"0123456789"
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        prepare_first_frame(data, {"name": "horse_run"}, "a red horse runs in the sky", tmp_path / "g.png",
                            320, 512, sha256=manifest["benchmark"][key])
    assert not (tmp_path / "g.png").exists()


def _png(width, height):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("body, problem", [
    (_png(512, 320)[:-200], r"cannot be decoded: .*truncated"),
    (b"<!DOCTYPE html><html><body>Rate limit</body></html>", r"cannot be decoded \(it is an HTML page\)"),
    (_png(320, 320), r"is 320x320 \(WxH\), whose aspect ratio differs from the video's 512x320"),
    (_png(8, 5), r"is 8x5 \(WxH\), at least 16 pixels a side needed"),
])
def test_bad_first_frames_are_found_in_the_data_stage_and_named(http_server, tmp_path, body, problem):
    # without a manifest sum (a user's own benchmark): only the image check can catch these
    http_server.files["/benchmark/horse_run/a_red_horse_runs_in_the_sky.png"] = body
    data = {"source": "lamp", "benchmark_url": http_server.url("/benchmark")}
    out = tmp_path / "first_frames" / "f.png"
    with pytest.raises(DataError, match=f"{out}: first-frame image {problem}"):
        prepare_first_frame(data, {"name": "horse_run"}, "a red horse runs in the sky", out, 320, 512)
    assert not out.exists()
    http_server.files["/benchmark/horse_run/a_red_horse_runs_in_the_sky.png"] = _png(1024, 640)
    prepare_first_frame(data, {"name": "horse_run"}, "a red horse runs in the sky", out, 320, 512)
    assert out.is_file()


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    from t2v_core.video_io import atomic_path

    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(umask)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644
