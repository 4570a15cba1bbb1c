"""Issue 15, "a hostile afternoon": temp clean-up that must not delete users' files, crafted packs,
memory bombs, variable-frame-rate video, SIGTERM, full disks and misleading messages."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from dinstyle.cli import app

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# -- stale temps: only a dead dinstyle writer's own files -------------------------------------------

def test_cleanup_keeps_users_hidden_files(tmp_path, images, tiny_weights):
    from dinstyle.io.files import _HOST

    content, style = images("c.png"), images("s.png", (32, 32))
    out = tmp_path / "out"
    out.mkdir()
    mine = [out / ".c_s.png.swp", out / ".c_s.png.orig", out / ".c_s.png.x1y2z3w4.png",
            out / f".c_s.png.dinstyle-{_HOST}-{os.getppid()}-abcd1234.png",  # a live process's temp
            out / f".c_s.png.dinstyle-0123abcd-{_dead_pid()}-abcd1234.png"]  # another machine's
    for p in mine:
        p.write_bytes(b"keep me")
    stale = out / f".c_s.png.dinstyle-{_HOST}-{_dead_pid()}-abcd1234.png"
    stale.write_bytes(b"half a png")
    r = run("image", content, "-s", style, "-w", tiny_weights, "-o", out, "--style-size", "32")
    assert r.exit_code == 0, r.output
    assert all(p.read_bytes() == b"keep me" for p in mine)
    assert not stale.exists()
    (out / "c_s.png").unlink()
    (out / "c_s.png").write_bytes(b"existing output")  # skipped outputs: same rule
    r = run("image", content, "-s", style, "-w", tiny_weights, "-o", out, "--style-size", "32")
    assert r.exit_code == 0 and all(p.exists() for p in mine)


def test_concurrent_overwrite_keeps_the_other_runs_temp(tmp_path, images, tiny_weights):
    content, style = images("c.png"), images("s.png", (32, 32))
    dest = tmp_path / "out" / "c_s.png"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from dinstyle.io.files import atomic_path
        with atomic_path({str(dest)!r}) as tmp:
            tmp.write_bytes(b"first run")
            print(tmp, flush=True)
            sys.stdin.readline()  # still encoding...
        """)], env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        tmp = Path(holder.stdout.readline().strip())
        assert tmp.exists() and tmp.parent == dest.parent
        r = run("image", content, "-s", style, "-w", tiny_weights, "-o", dest.parent, "--style-size", "32",
                "--overwrite")
        assert r.exit_code == 0, r.output
        assert tmp.exists(), "the second run deleted the first run's in-progress temp"
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    assert dest.read_bytes() == b"first run"  # the first run finished (last rename wins)


# -- crafted style packs: validated against the model before anything is allocated ------------------

def _pack(tmp_path, images, tiny_weights, mode="standard"):
    from dinstyle.engine import Stylizer

    st = Stylizer(weights=tiny_weights, device="cpu")
    return st.make_pack(images("s.png", (32, 32)), mode=mode, style_size=32).save(tmp_path / f"{mode}.dinpack")


def _craft(path, dest, meta_changes=None, tensors=None):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    meta.update(meta_changes or {})
    t = {k: v for k, v in load_file(str(path)).items() if k != "palette"}  # the layers are the target here
    save_file(tensors(t) if tensors else t, str(dest), metadata=meta)
    return dest


@pytest.mark.parametrize("case", ["layers", "mode", "empty_maps", "stray_tensor"])
def test_crafted_pack_is_one_clear_error(tmp_path, images, tiny_weights, case):
    mode = "adaptive" if case == "empty_maps" else "standard"
    good = _pack(tmp_path, images, tiny_weights, mode)
    bad = tmp_path / "bad.dinpack"
    if case == "layers":
        _craft(good, bad, {"layers": "40000000"})
    elif case == "mode":
        _craft(good, bad, {"mode": "bogus"})
    elif case == "empty_maps":
        _craft(good, bad, tensors=lambda t: {k: v[:, :, :0, :0].contiguous() for k, v in t.items()})
    else:
        import torch

        _craft(good, bad, tensors=lambda t: {**t, "din7.weight": torch.zeros(1, 4)})
    assert bad.stat().st_size < 4096
    t0 = time.time()
    r = run("image", images("c.png"), "-s", bad, "-w", tiny_weights, "-o", tmp_path / "o.png")
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "bad.dinpack" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "o.png").exists()
    r = run("info", "-s", bad, "-w", tiny_weights)
    assert r.exit_code == 2 and "bad.dinpack" in r.stderr
    assert time.time() - t0 < 60  # the 40M-layer pack used to hang with memory growing


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs (a disk that fills up), or None where the tests cannot mount one."""
    d = tmp_path / "tiny"
    d.mkdir()
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True,
                            timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    yield d if ok else None
    if ok:
        subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=30)


def test_full_disk_while_writing_a_pack(tmp_path, images, tiny_weights, tiny_fs, monkeypatch):
    import errno

    if tiny_fs is None:  # simulate: the bytes are written, then the disk is full
        def full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("dinstyle.io.files.os.fsync", full)
    out = tiny_fs or tmp_path / "packs"
    r = run("precompute", images("s.png", (160, 160)), "-o", out, "--mode", "adaptive", "--style-size", "160",
            "-w", tiny_weights)
    assert r.exit_code == 2, r.output
    assert "No space left on device" in r.stderr and "Traceback" not in r.output
    assert not out.exists() or list(out.iterdir()) == []  # no torn pack, no temp


# -- video: variable frame rate, ffmpeg's reasons, SIGTERM ------------------------------------------

def _ffmpeg(*args):
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *map(str, args)], check=True,
                   timeout=120)


def test_variable_frame_rate_video_keeps_its_frames_and_duration(tmp_path, images, tiny_weights):
    from dinstyle.io.video import measure_video, probe_frames

    src = tmp_path / "vfr.mp4"
    # 30 frames at 30 fps, then 30 frames at 5 fps: 60 frames over 7 s (average 8.6 fps, base rate 30)
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=30:duration=2",
            "-vf", "setpts='if(lt(N,30),N,30+(N-30)*6)/30/TB'", "-fps_mode", "vfr", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", src)
    t_in = measure_video(src)
    out = tmp_path / "out.mp4"
    r = run("video", src, "-s", images("s.png", (32, 32)), "-w", tiny_weights, "-o", out, "--style-size", "32")
    assert r.exit_code == 0, r.output
    t_out = measure_video(out)
    # was 22.8 s for 7 s and 210 frames for 60 (duplicated at the base rate), then 15 % off at the average rate
    assert t_out.frames == t_in.frames == probe_frames(out)[0] == 60
    assert abs(t_out.seconds - t_in.seconds) <= 1 / 30, (t_in.seconds, t_out.seconds)
    assert t_out.variable and "variable frame rate" in r.stderr


def test_ffmpeg_failure_is_one_line_with_the_reason(tmp_path, images, tiny_weights):
    src = tmp_path / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", src)
    p = subprocess.run([sys.executable, "-m", "dinstyle", "video", str(src), "-s", str(images("s.png", (32, 32))),
                        "-w", str(tiny_weights), "-o", str(tmp_path / "o.mp4"), "--style-size", "32",
                        "--codec", "nonesuch"], env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"error: {tmp_path / 'o.mp4'}: encoding failed (Unknown encoder 'nonesuch')"]
    assert not list(tmp_path.glob(".o.mp4*")) and not (tmp_path / "o.mp4").exists()


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd and d.name != str(os.getpid()):
            found.append(cmd)
    return found


def _style_cmd(tiny_weights, images):
    return ["-s", str(images("s.png", (32, 32))), "-w", str(tiny_weights), "--style-size", "32"]


def test_sigterm_mid_video_cleans_up_and_exits_143(tmp_path, images, tiny_weights):
    src = tmp_path / "long.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=30:duration=120", "-c:v", "libx264", "-preset",
            "ultrafast", "-pix_fmt", "yuv420p", src)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "dinstyle", "video", str(src), "-o", str(out / "o.mp4"),
                          *_style_cmd(tiny_weights, images)], env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(f.stat().st_size > 0 for f in out.glob(".o.mp4.*")):
        time.sleep(0.05)
    assert p.poll() is None, "the video finished before it could be interrupted"
    p.send_signal(signal.SIGTERM)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 143, stderr
    assert "terminated: 0 written" in stderr and "Traceback" not in stderr
    assert list(out.iterdir()) == []  # no temp, no partial output
    time.sleep(0.5)
    assert _processes_mentioning(str(tmp_path)) == []  # no ffmpeg left running


def test_sigterm_mid_batch_prints_a_summary_and_exits_143(tmp_path, images, tiny_weights):
    for i in range(12):
        images(f"in/img{i:02d}.png", (320, 240), seed=i)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "dinstyle", "image", str(tmp_path / "in"), "-o", str(out),
                          *_style_cmd(tiny_weights, images)], env=ENV, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("img*.png"))) < 2:
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 143, stderr
    assert "terminated:" in stderr and "run the same command again" in stderr and "Traceback" not in stderr
    written = sorted(out.glob("img*.png"))
    assert 0 < len(written) < 12
    for f in written:
        Image.open(f).load()
    assert not list(out.glob(".*"))


# -- no tracebacks ----------------------------------------------------------------------------------

def test_sheet_with_bad_columns_is_an_option_error(tmp_path, images, tiny_weights):
    for bad in (["--cols", "-1"], ["--cols", "0"], ["--strip", "-1"], ["--strip", "1"]):
        r = run("sheet", images("c.png"), "-s", images("s.png", (32, 32)), "-w", tiny_weights, "-o",
                tmp_path / "sheet.jpg", *bad)
        assert r.exit_code == 2 and "must be at least" in r.stderr, (bad, r.output)
    assert not (tmp_path / "sheet.jpg").exists()


def test_over_long_output_name_is_one_line(tmp_path, images, tiny_weights):
    content, style = images("c.png"), images("s.png", (32, 32))
    for out in (tmp_path / ("a" * 300) / "x.png", tmp_path / ("b" * 300 + ".png")):
        r = run("image", content, "-s", style, "-w", tiny_weights, "-o", out, "--style-size", "32")
        assert r.exit_code == 2 and "file name too long" in r.stderr and "Traceback" not in r.output, r.output
    long_ok = tmp_path / ("c" * 245 + ".png")  # fits; its temp name is cut short to fit too
    r = run("image", content, "-s", style, "-w", tiny_weights, "-o", long_ok, "--style-size", "32")
    assert r.exit_code == 0, r.output
    assert Image.open(long_ok).size == (40, 30) and sorted(tmp_path.iterdir()) == sorted([content, style, long_ok])
    src = tmp_path / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=10:duration=0.3", "-c:v", "libx264", "-pix_fmt",
            "yuv420p", src)
    r = run("video", src, "-s", style, "-w", tiny_weights, "-o", tmp_path / ("d" * 300 + ".mp4"))
    assert r.exit_code == 2 and "file name too long" in r.stderr


@pytest.fixture
def full_device(tmp_path, tiny_fs):
    """A file that refuses writes with ENOSPC: /dev/full, a node like it, or a full tiny tmpfs."""
    if Path("/dev/full").is_char_device():
        return Path("/dev/full")
    node = tmp_path / "full"
    if subprocess.run(["mknod", str(node), "c", "1", "7"], capture_output=True).returncode == 0:
        try:
            with open(node, "wb") as f:
                f.write(b"x")
                f.flush()
        except OSError:
            return node
    if tiny_fs is not None:
        with contextlib.suppress(OSError), open(tiny_fs / "filler", "wb") as f:
            f.write(bytes(1 << 20))  # more than fits: the disk is full
        return tiny_fs / "stdout"
    pytest.skip("no way to make a full device here")




def test_json_to_a_full_device_is_one_clear_error(tmp_path, images, tiny_weights, full_device):
    with open(full_device, "wb") as stdout:
        p = subprocess.run([sys.executable, "-m", "dinstyle", "image", str(images("c.png")), "-o",
                            str(tmp_path / "o.png"), "--json", *_style_cmd(tiny_weights, images)], env=ENV,
                           stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == ["error: stdout: cannot write the JSON output (No space left on device)"]


def test_json_top_level_error_is_a_record_on_stdout(tmp_path, images, tiny_weights):
    r = run("image", images("c.png"), "-s", tmp_path / "missing.jpg", "-w", tiny_weights, "--json")
    assert r.exit_code == 2
    rec = json.loads(r.stdout)
    assert rec["status"] == "error" and "missing.jpg" in rec["error"] and rec["exit_code"] == 2
    r = run("video", tmp_path / "none.mp4", "-s", images("s.png", (32, 32)), "-w", tiny_weights, "--json")
    assert r.exit_code == 2 and json.loads(r.stdout.splitlines()[0])["status"] == "failed"


# -- wrong results with exit 0 ----------------------------------------------------------------------

def test_gif_output_is_a_gif_and_format_conflicts_are_refused(tmp_path, images, tiny_weights):
    content, style = images("c.png"), images("s.png", (32, 32))
    r = run("image", content, "-s", style, "-w", tiny_weights, "-o", tmp_path / "r.gif", "--style-size", "32")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "r.gif") as im:
        assert im.format == "GIF" and im.size == (40, 30)
    r = run("image", content, "-s", style, "-w", tiny_weights, "-o", tmp_path / "x.png", "--format", "jpg")
    assert r.exit_code == 2 and "--format jpg conflicts with --out" in r.stderr
    assert not (tmp_path / "x.png").exists()
    r = run("image", content, "-s", style, "-w", tiny_weights, "-o", tmp_path / "x.jpeg", "--format", "jpg",
            "--style-size", "32")
    assert r.exit_code == 0  # the same format: no conflict


def test_eval_video_refuses_clips_that_do_not_match(tmp_path, images):
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", a)
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=48x64:rate=10:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", b)
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", c)
    jpeg = images("still.jpg", (64, 48))
    for other, why in ((b, "pictures differ"), (c, "lengths differ"), (jpeg, "1 frame")):
        r = run("eval-video", a, other)
        assert r.exit_code == 2 and why in r.stderr, (other, r.output)
    r = run("eval-video", a, a, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["pairs"] == 9


# -- messages ---------------------------------------------------------------------------------------

def test_odd_inputs_are_named_for_what_they_are(tmp_path, images, tiny_weights):
    style = images("s.png", (32, 32))
    nl = tmp_path / "bad\nname.png"
    nl.write_bytes(b"not a png")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    os.mkfifo(tmp_path / "fifo.png")
    expect = {str(nl): "'" + str(nl).replace("\n", "\\n") + "': not an image file",
              str(tmp_path / "loop1"): "loop1: symbolic link loop",
              str(tmp_path / "dangling.png"): "dangling.png: broken symbolic link",
              str(tmp_path / "fifo.png"): "fifo.png: is a FIFO, not a regular file",
              "/dev/zero": "/dev/zero: is a character device, not a regular file"}
    for src, msg in expect.items():
        r = run("image", src, "-s", style, "-w", tiny_weights, "-o", tmp_path / "o.png", "--style-size", "32")
        assert r.exit_code == 2, (src, r.output)
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and msg in errors[0], (src, r.stderr)
        assert all(line.startswith(("error:", "0 written")) for line in r.stderr.splitlines()), r.stderr


def test_video_onto_its_input_is_refused_not_skipped(tmp_path, images, tiny_weights):
    src = tmp_path / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=32x32:rate=10:duration=0.3", "-c:v", "libx264", "-pix_fmt",
            "yuv420p", src)
    before = src.read_bytes()
    r = run("video", src, "-s", images("s.png", (32, 32)), "-w", tiny_weights, "-o", src)
    assert r.exit_code == 2 and "would overwrite the input" in r.stderr and "skipped" not in r.stderr
    assert src.read_bytes() == before


# -- memory bombs -----------------------------------------------------------------------------------

def _png_bomb(path, w, h, rows=100):
    """A PNG declaring w x h black RGB pixels in about 1 MB (20000 x 20000): one deflate block of
    `rows` scanlines, flushed to a byte boundary and repeated."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    block = bytes((1 + 3 * w) * rows)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(h // rows):
        adler = zlib.adler32(block, adler)
    idat = b"\x78\xda" + piece * (h // rows) + b"\x03\x00" + struct.pack(">I", adler)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


LIMITED = """
import resource, sys
import dinstyle.engine  # torch and the model code: mapped by every run anyway
vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (vm + int(2.5 * 2**30), resource.RLIM_INFINITY))
from dinstyle.cli import main
sys.argv = ["dinstyle"] + sys.argv[1:]
main()
"""


def test_png_bomb_under_a_memory_limit(tmp_path, images, tiny_weights):
    from dinstyle.io.memory import GB, available_memory

    if not Path("/proc/self/status").exists() or (available_memory() or 0) < 3 * GB:
        pytest.skip("needs Linux and 3 GB of free memory")
    bomb = _png_bomb(tmp_path / "bomb.png", 20000, 20000)
    assert bomb.stat().st_size < 2_000_000

    def limited(*args):  # the CLI with 2.5 GB of address space to spare (ulimit -v)
        return subprocess.run([sys.executable, "-c", LIMITED, "image", str(bomb), *map(str, args),
                               *_style_cmd(tiny_weights, images)], env=ENV, capture_output=True, text=True,
                              timeout=600)

    p = limited("-o", tmp_path / "small.png", "--max-size", "64")  # decoded, shrunk, no full-size copies
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / "small.png").size == (64, 64)
    p = limited("-o", tmp_path / "full.png")  # 1.2 GB of pixels and their copies: cannot fit, refused
    assert p.returncode == 2, p.stderr
    assert "20000x20000 is too large to decode here (needs about" in p.stderr and "use --max-size" in p.stderr
    assert "Traceback" not in p.stderr and "MemoryError" not in p.stderr
    assert not (tmp_path / "full.png").exists()


def test_jpeg_is_decoded_at_reduced_size_with_max_size(tmp_path, monkeypatch):
    from dinstyle.io.images import read_image

    src = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (200, 100, 50)).save(src, quality=90)
    loaded = []
    real_load = Image.Image.load

    def spy(self):
        loaded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(Image.Image, "load", spy)
    img = read_image(src, max_size=256)
    assert img.rgb.shape == (192, 256, 3)
    assert max(loaded) == (500, 375)  # JPEG draft: 1/8 scale, never 4000 x 3000


def test_huge_style_size_is_refused_with_one_line(tmp_path, images, tiny_weights):
    r = run("image", images("c.png"), "-s", images("s.png", (32, 32)), "-w", tiny_weights, "-o", tmp_path / "o.png",
            "--style-size", "100000")
    assert r.exit_code == 2, r.output
    assert "--style-size 100000: encoding the style at 100000x100000 needs about" in r.stderr
    assert r.stderr.count("\n") == 1 and not (tmp_path / "o.png").exists()


def test_image_too_large_to_stylize_here_is_refused(tmp_path, images, tiny_weights, monkeypatch):
    monkeypatch.setattr("dinstyle.io.memory.available_memory", lambda: 50 << 20)
    big = images("big.png", (1000, 800))
    r = run("image", big, "-s", images("s.png", (32, 32)), "-w", tiny_weights, "-o", tmp_path / "o.png",
            "--style-size", "32", "--tile", "0")
    assert r.exit_code == 2, r.output
    assert "a 1000x800 image needs about" in r.stderr and "use --max-size or --tile 1024" in r.stderr
    assert not (tmp_path / "o.png").exists()


def test_memory_error_anywhere_is_one_line(tmp_path, images, tiny_weights, monkeypatch):
    from dinstyle.runner import ContentRunner
    from dinstyle.styles import StylePath

    def boom(self, *a, **kw):
        raise MemoryError()

    monkeypatch.setattr(StylePath, "load", boom)
    r = run("image", images("c.png"), "-s", images("s.png", (32, 32)), "-w", tiny_weights, "-o", tmp_path / "o.png")
    assert r.exit_code == 2 and r.stderr.startswith("error: out of memory") and "Traceback" not in r.output
    monkeypatch.undo()
    monkeypatch.setattr(ContentRunner, "stylize", boom)
    r = run("image", images("c.png"), "-s", images("s.png", (32, 32)), "-w", tiny_weights, "-o", tmp_path / "o.png",
            "--style-size", "32")
    assert r.exit_code == 2 and "out of memory on cpu" in r.stderr and "Traceback" not in r.output


def test_pack_text_is_shown_not_interpreted(tmp_path, images, tiny_weights):
    bad = _craft(_pack(tmp_path, images, tiny_weights), tmp_path / "markup.dinpack",
                 {"source": "evil[/bold]\n[red]x.png"})
    r = run("info", "-s", bad, "-w", tiny_weights)
    assert r.exit_code == 0, r.output
    assert "evil[/bold]\\n[red]x.png" in r.stdout.replace("\n", "").replace(" ", "")
