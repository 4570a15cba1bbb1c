"""dinstyle.batch: planning (output names, collisions, skip / overwrite / refuse) and running
batches, called as a library (the CLI's rendering of the same runs is in test_cli.py)."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dinstyle.batch import (ImagePlan, output_label, pack_outputs, plan_images, plan_outputs, plan_video_outputs,
                            run_images, run_packs, run_videos, target_problem)
from dinstyle.errors import InputError, OptionError, OutputError
from dinstyle.model import DinParams
from dinstyle.packs import load_pack
from dinstyle.styles import AutoStyle, Style


def style(label="style", mode="standard") -> Style:
    """A style as planning sees it: a label and a mode (no parameters are needed to name outputs)."""
    return Style(DinParams(mode, ()), label)


def names(plan: dict[Path, Path]) -> list[str]:
    return [p.name for p in plan.values()]


# -- output names --------------------------------------------------------------------------------

def test_output_label_is_file_safe_and_carries_the_mode():
    assert output_label(style("starry night/2")) == "starry_night_2"
    assert output_label(style("a+b.v2-x")) == "a+b.v2-x"  # + - . are kept (blends: "a70+b30")
    assert output_label(style("wave", "adaptive")) == "wave_adaptive"
    assert output_label(style("wave", "deformable")) == "wave_deformable"
    assert output_label(AutoStyle(style("wave"), style("wave", "adaptive"), "wave")) == "wave_auto"


def test_plan_names_keep_the_format_of_each_input(tmp_path):
    files = [Path("in/a.JPG"), Path("in/b.jpeg"), Path("in/c.tiff"), Path("in/d.gif"), Path("in/e.webp"),
             Path("in/f.bmp")]
    plan = plan_outputs(files, style(), tmp_path / "out", None)
    assert list(plan) == files
    assert names(plan) == ["a_style.jpg", "b_style.jpeg", "c_style.tiff", "d_style.png", "e_style.webp",
                           "f_style.bmp"]  # GIF is written as PNG
    assert {p.parent for p in plan.values()} == {tmp_path / "out"}


def test_plan_format_sets_every_extension(tmp_path):
    files = [Path("a.png"), Path("b.webp")]
    assert names(plan_outputs(files, style(), tmp_path, "JPEG")) == ["a_style.jpg", "b_style.jpg"]
    assert names(plan_outputs(files, style(), tmp_path, "tiff")) == ["a_style.tif", "b_style.tif"]


def test_plan_default_folder():
    assert plan_outputs([Path("x/a.png")], style("s"), None, None) == {Path("x/a.png"): Path("stylized/a_s.png")}


# -- collisions between inputs -------------------------------------------------------------------

def test_same_name_in_two_folders_gets_a_number(tmp_path):
    files = [Path("one/photo.jpg"), Path("two/photo.jpg"), Path("three/photo.jpg")]
    assert names(plan_outputs(files, style(), tmp_path, None)) == ["photo_style.jpg", "photo-2_style.jpg",
                                                                   "photo-3_style.jpg"]


def test_same_stem_other_extension(tmp_path):
    # different formats keep different names ...
    assert names(plan_outputs([Path("a.jpg"), Path("a.png")], style(), tmp_path, None)) == ["a_style.jpg",
                                                                                           "a_style.png"]
    # ... but once they are written in one format they would collide
    assert names(plan_outputs([Path("a.jpg"), Path("a.png")], style(), tmp_path, "png")) == ["a_style.png",
                                                                                            "a-2_style.png"]
    # a GIF is written as PNG, so it meets the PNG of the same stem
    assert names(plan_outputs([Path("a.png"), Path("a.gif")], style(), tmp_path, None)) == ["a_style.png",
                                                                                           "a-2_style.png"]


def test_collisions_ignore_case(tmp_path):
    # one file on case-insensitive file systems (macOS, Windows)
    assert names(plan_outputs([Path("x/Photo.PNG"), Path("y/photo.png")], style(), tmp_path, None)) == [
        "Photo_style.png", "photo-2_style.png"]


def test_numbered_names_do_not_meet_real_stems(tmp_path):
    files = [Path("x/a-2.png"), Path("y/a.png"), Path("z/a.png"), Path("w/a-2.png")]
    plan = plan_outputs(files, style(), tmp_path, None)
    assert names(plan) == ["a-2_style.png", "a_style.png", "a-3_style.png", "a-2-2_style.png"]
    assert len({n.lower() for n in names(plan)}) == len(files)


def test_single_file_out(tmp_path):
    out = tmp_path / "result.jpg"
    assert plan_outputs([Path("a.png")], style(), out, None) == {Path("a.png"): out}
    assert plan_outputs([Path("a.png")], style(), out, "jpeg") == {Path("a.png"): out}  # the same format
    with pytest.raises(OptionError, match="a file name takes one input; give a folder for 2 inputs"):
        plan_outputs([Path("a.png"), Path("b.png")], style(), out, None)
    with pytest.raises(OptionError, match="--format png conflicts with --out"):
        plan_outputs([Path("a.png")], style(), out, "png")


def test_out_is_a_folder_even_with_an_image_extension(tmp_path):
    folder = tmp_path / "shots.png"
    folder.mkdir()
    assert plan_outputs([Path("a.png")], style(), folder, None) == {Path("a.png"): folder / "a_style.png"}


def test_out_that_is_a_file_but_not_an_image_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        plan_outputs([Path("a.png")], style(), tmp_path / "notes.txt", None)


def test_over_long_output_name_is_refused_before_any_work(tmp_path):
    with pytest.raises(OutputError, match="file name too long"):
        plan_outputs([Path("a.png")], style(), tmp_path / ("x" * 300), None)


def test_plan_images_expands_and_reports(tmp_path, images):
    images("in/b.png")
    images("in/a.jpg")
    images("in/sub/c.png")
    plan = plan_images([str(tmp_path / "in"), str(tmp_path / "missing.png")], style(), out=tmp_path / "out")
    assert isinstance(plan, ImagePlan)
    assert [f.name for f in plan.files] == ["a.jpg", "b.png"]  # sorted; not recursive
    assert len(plan.problems) == 1 and "missing.png" in plan.problems[0]
    assert names(plan.outputs) == ["a_style.jpg", "b_style.png"]
    rec = plan_images([str(tmp_path / "in")], style(), out=tmp_path / "out", recursive=True)
    assert [f.name for f in rec.files] == ["a.jpg", "b.png", "c.png"]
    with pytest.raises(InputError, match="missing.png"):
        plan_images([str(tmp_path / "missing.png")], style(), out=tmp_path / "out")
    with pytest.raises(OptionError, match="--format gif: unknown"):
        plan_images([str(tmp_path / "in")], style(), out=tmp_path / "out", fmt="gif")


def test_video_and_pack_names(tmp_path):
    clips = [Path("x/clip.mov"), Path("y/walk.mp4")]
    plan = plan_video_outputs(clips, style("wave", "adaptive"), tmp_path)
    assert plan == {clips[0]: tmp_path / "clip_wave_adaptive.mp4", clips[1]: tmp_path / "walk_wave_adaptive.mp4"}
    assert plan_video_outputs(clips[:1], style(), None) == {clips[0]: Path("stylized/clip_style.mp4")}
    assert plan_video_outputs(clips[:1], style(), tmp_path / "o.mkv") == {clips[0]: tmp_path / "o.mkv"}
    with pytest.raises(OptionError, match="a file name takes one input video"):
        plan_video_outputs(clips, style(), tmp_path / "o.mp4")
    assert pack_outputs([Path("styles/wave.jpg")], tmp_path) == {Path("styles/wave.jpg"): tmp_path / "wave.dinpack"}


def test_videos_and_packs_that_share_a_stem_get_numbered_names(tmp_path):
    clips = [Path("a/clip.mp4"), Path("b/clip.mp4"), Path("a/CLIP.mov")]
    assert names(plan_video_outputs(clips, style(), tmp_path)) == ["clip_style.mp4", "clip-2_style.mp4",
                                                                  "CLIP-3_style.mp4"]
    styles = [Path("a/wave.jpg"), Path("b/wave.png")]
    assert pack_outputs(styles, tmp_path) == {styles[0]: tmp_path / "wave.dinpack", styles[1]: tmp_path / "wave-2.dinpack"}


# -- skip / overwrite / refuse -------------------------------------------------------------------

def test_target_problem(tmp_path):
    src, dst = tmp_path / "a.png", tmp_path / "out.png"
    src.write_bytes(b"x")
    assert target_problem(src, dst, overwrite=False) is None  # nothing there: run
    dst.write_bytes(b"y")
    assert target_problem(src, dst, overwrite=False) == ("skipped", "exists (use --overwrite)")
    assert target_problem(src, dst, overwrite=True) is None
    status, why = target_problem(src, src, overwrite=True)  # never onto the input, even with --overwrite
    assert status == "failed" and "output would overwrite an input" in why
    # onto another input of the same batch, through another spelling of its path
    other = tmp_path / "b.png"
    assert target_problem(src, tmp_path / "sub" / ".." / "b.png", overwrite=True,
                          inputs={src.resolve(), other.resolve()})[0] == "failed"


@pytest.fixture(scope="module")
def small_style(st, tmp_path_factory):
    path = tmp_path_factory.mktemp("style") / "s.png"
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    return st.load_style([path], style_size=32)


def test_run_images_writes_skips_and_overwrites(st, small_style, tmp_path, images):
    a = images("in/a.png", (20, 14), seed=1)
    b = images("in/b.jpg", (12, 10), seed=2)
    out = tmp_path / "out"
    events = []
    s = run_images(st, [str(tmp_path / "in")], small_style, out=out, on_event=events.append)
    assert (s.done, s.skipped, s.failed) == (2, 0, 0)
    assert [(e.status, Path(e.input).name, Path(e.output).name, e.size) for e in events] == [
        ("done", "a.png", "a_s.png", (20, 14)), ("done", "b.jpg", "b_s.jpg", (12, 10))]
    assert [e.record["status"] for e in s.events] == ["done", "done"]
    assert Image.open(out / "a_s.png").size == (20, 14)

    (out / "a_s.png").write_bytes(b"keep me")  # a second run leaves what exists alone ...
    s = run_images(st, [str(a), str(b)], small_style, out=out)
    assert (s.done, s.skipped, s.failed) == (0, 2, 0)
    assert {e.error for e in s.events} == {"exists (use --overwrite)"}
    assert (out / "a_s.png").read_bytes() == b"keep me"

    s = run_images(st, [str(a)], small_style, out=out, overwrite=True)  # ... unless told to replace it
    assert (s.done, s.skipped, s.failed) == (1, 0, 0)
    assert Image.open(out / "a_s.png").size == (20, 14)


def test_run_images_never_writes_over_an_input(st, small_style, tmp_path, images):
    a = images("in/a.png", (16, 12), seed=1)
    earlier = images("in/a_s.png", (16, 12), seed=3)  # an earlier output, now among the inputs
    before = {p: p.read_bytes() for p in (a, earlier)}
    s = run_images(st, [str(tmp_path / "in")], small_style, out=tmp_path / "in", overwrite=True)
    by_input = {Path(e.input).name: e for e in s.events}
    assert by_input["a.png"].status == "failed" and "would overwrite an input" in by_input["a.png"].error
    assert by_input["a_s.png"].status == "done" and Path(by_input["a_s.png"].output).name == "a_s_s.png"
    assert {p: p.read_bytes() for p in before} == before

    s = run_images(st, [str(a)], small_style, out=a, overwrite=True)  # one file onto itself
    assert (s.done, s.failed) == (0, 1) and a.read_bytes() == before[a]


def test_run_images_same_names_in_two_folders(st, small_style, tmp_path, images):
    images("one/photo.png", (10, 8), seed=1)
    images("two/photo.png", (14, 6), seed=2)
    images("two/photo.gif", (6, 6), seed=3)
    s = run_images(st, [str(tmp_path / "one"), str(tmp_path / "two")], small_style, out=tmp_path / "out")
    assert s.done == 3
    sizes = {p.name: Image.open(p).size for p in (tmp_path / "out").iterdir()}
    assert sizes == {"photo_s.png": (10, 8), "photo-2_s.png": (6, 6), "photo-3_s.png": (14, 6)}


def test_run_images_reports_missing_inputs_and_goes_on(st, small_style, tmp_path, images):
    a = images("a.png", (8, 8))
    s = run_images(st, [str(tmp_path / "nope.png"), str(a)], small_style, out=tmp_path / "out")
    assert (s.done, s.failed) == (1, 1)
    assert s.events[0].status == "failed" and s.events[0].output is None and "nope.png" in s.events[0].error
    assert (s.events[0].index, s.events[1].index, s.events[1].total) == (0, 1, 2)


def test_run_videos_skips_or_refuses_before_decoding(st, small_style, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read: planning decides first")
    dest = tmp_path / "out" / "clip_s.mp4"
    dest.parent.mkdir()
    dest.write_bytes(b"earlier output")
    events = []
    s = run_videos(st, [clip], small_style, out=tmp_path / "out", on_event=events.append)
    assert (s.done, s.skipped, s.failed) == (0, 1, 0)
    assert [(e.status, e.output, e.error) for e in events] == [("skipped", str(dest), "exists (use --overwrite)")]
    assert dest.read_bytes() == b"earlier output"
    with pytest.raises(OutputError, match="would overwrite the input"):
        run_videos(st, [clip], small_style, out=clip, overwrite=True)
    assert clip.read_bytes() == b"not read: planning decides first"


def test_run_packs_skips_and_overwrites(st, tmp_path, images):
    src = images("styles/wave.png", (32, 32), seed=5)
    out = tmp_path / "packs"
    s = run_packs(st, [src], out=out, style_size=32)
    assert (s.done, s.skipped) == (1, 0)
    assert s.events[0].record["output"] == str(out / "wave.dinpack") and s.events[0].record["mode"] == "standard"
    (out / "wave.dinpack").write_bytes(b"keep me")
    s = run_packs(st, [src], out=out, style_size=32)
    assert (s.done, s.skipped) == (0, 1) and (out / "wave.dinpack").read_bytes() == b"keep me"
    s = run_packs(st, [src], out=out, style_size=32, overwrite=True)
    assert (s.done, s.skipped) == (1, 0)
    pack = load_pack(out / "wave.dinpack")  # a pack again (its header has the time it was made)
    assert (pack.mode, pack.model_id) == ("standard", st.model_id)
