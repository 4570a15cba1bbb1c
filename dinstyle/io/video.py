"""Stream video frames in and out through imageio-ffmpeg's bundled ffmpeg. No torch here.

Frames are never all in memory: ``read_video`` yields them one at a time, ``VideoWriter`` pipes
them to ffmpeg as they come. Every source frame is decoded once, with its presentation timestamp
(ffmpeg neither duplicates nor drops frames: ``-fps_mode passthrough``; the timestamps come from
its ``showinfo`` filter on the same decode). The writer gives every frame the timestamp it had in
the source (the frames reach ffmpeg in a minimal Matroska stream, which carries a timestamp per
frame), so frame count, duration and timing are kept: a constant-rate source stays constant-rate
(29.97 stays 30000/1001), a variable-frame-rate one keeps its uneven timing and stays in sync with
its audio. The audio stream is copied without re-encoding where the container allows, and the
output is written to a temp file that is renamed only when the video is complete.
"""
from __future__ import annotations

import re
import struct
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import imageio_ffmpeg
import numpy as np

from dinstyle.errors import InputError, OptionError, OutputError
from dinstyle.io.files import atomic_path, check_input_file, path_problem, q

VIDEO_EXTS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts"}
COPYABLE_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus"}  # into .mp4/.mov without re-encoding
MAX_VIDEO_PIXELS = 8192 * 8192


@dataclass
class VideoInfo:
    path: Path
    size: tuple[int, int]  # (width, height) of the frames read (after rotation and --max-size)
    fps: Fraction  # the stream's rate as the container states it (its average rate when the rate varies)
    duration: float
    audio_codec: str | None
    time_base: Fraction = Fraction(1, 1_000_000)  # of the source's timestamps
    start: Fraction = Fraction(0)  # the first frame's timestamp, seconds from the file's start
    variable: bool = False  # the container's average rate differs from its base rate (a hint, known at
    #                         the start; the frames' timestamps tell for sure: the writer's ``timing``)

    @property
    def frames_estimate(self) -> int:
        return max(0, round(self.duration * float(self.fps)))


class TimedFrame(NamedTuple):
    """A decoded frame with its presentation timestamp and duration (seconds from the file's start;
    the duration as the source gives it, 0 where it gives none)."""
    image: np.ndarray
    pts: Fraction
    duration: Fraction


@dataclass
class Timing:
    """Frame count and timing of a stream of frames, added one at a time (the writer's record of
    what it wrote, or ``measure_video``'s of a file)."""
    frames: int = 0
    first: Fraction | None = None
    end: Fraction | None = None  # the last frame's timestamp plus its duration
    min_gap: Fraction | None = None
    max_gap: Fraction | None = None
    tick: Fraction = Fraction(1, 1_000_000)  # the time base's unit: gaps that differ by a tick or two are even
    _last: Fraction | None = None

    def add(self, pts: Fraction, duration: Fraction) -> None:
        if self._last is not None:
            gap = pts - self._last
            self.min_gap = gap if self.min_gap is None else min(self.min_gap, gap)
            self.max_gap = gap if self.max_gap is None else max(self.max_gap, gap)
        if self.first is None:
            self.first = pts
        self._last = pts
        self.frames += 1
        self.end = pts + max(duration, Fraction(0))

    @property
    def seconds(self) -> float:
        return float(self.end - self.first) if self.frames else 0.0

    @property
    def variable(self) -> bool:
        """The gaps between frames differ by more than timestamp rounding (two ticks, 5 %)."""
        if self.min_gap is None:
            return False
        return self.max_gap - self.min_gap > max(2 * self.tick, self.min_gap / 20)

    @property
    def average_fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def exact_fps(fps: float) -> Fraction:
    """ffmpeg prints 29.97 for 30000/1001: recover the NTSC fractions, keep others as they are."""
    if fps <= 0:
        return Fraction(0)
    for base in (24, 30, 48, 60, 120):
        if abs(fps - base * 1000 / 1001) < 0.006:
            return Fraction(base * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def ffmpeg_reason(log: str, replace: dict[str, str] | None = None) -> str:
    """The line of an ffmpeg log that says what went wrong (the first error, without the
    "[vost#0:0 @ 0x...]" prefix), for a one-line message."""
    for line in log.splitlines():
        line = re.sub(r"^\[[^\]]*\]\s*", "", line.strip()).strip()
        if not line or line.startswith(("ffmpeg version", "built with", "configuration:", "lib", "===", "FFMPEG")):
            continue
        for old, new in (replace or {}).items():
            line = line.replace(old, new)
        return line[:160].rstrip(".")
    return "ffmpeg gave no reason"


def _scale_filter(max_size: int | None) -> str:
    if not max_size:
        return ""
    m = int(max_size)
    return f"scale='if(gt(iw,ih),min({m},iw),-2)':'if(gt(iw,ih),-2,min({m},ih))',"


_LEVEL = re.compile(r"^(?:\[[^\]]*@[^\]]*\]\s*)?\[(\w+)\]\s?(.*)$")
_SHOWINFO = re.compile(r"\bn:\s*\d+\s+pts:\s*(\S+)\s+pts_time:\S*\s+(?:duration:\s*(\S+))?.*?\bs:(\d+)x(\d+)")


class _Decoder:
    """One ffmpeg decoding the first video stream to raw RGB on stdout, every frame once
    (``-fps_mode passthrough``), its ``showinfo`` lines on stderr giving each frame's timestamp.
    A thread reads stderr: the header (duration, rates, audio codec), the frames' timestamps in
    order, and the warnings and errors for messages. ffmpeg logs a frame before it writes it, so
    the timestamp of the next frame on stdout is known when that frame is read."""

    def __init__(self, path: Path, max_size: int | None):
        self.path = path
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-v", "level+info",
               "-i", str(path), "-map", "0:V:0", "-vf", _scale_filter(max_size) + "showinfo=checksum=0",
               "-fps_mode", "passthrough", "-an", "-sn", "-dn", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        self.cond = threading.Condition()
        self.stamps: deque = deque()  # (pts ticks or None, duration ticks or None, (w, h), time base)
        self.errors: deque = deque(maxlen=20)
        self.header: dict = {"video": False, "fps": None, "tbr": None, "duration": 0.0, "audio": None}
        self.ended = False  # stderr closed: ffmpeg has exited
        self.time_base = Fraction(1, 1_000_000)
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True)
        except OSError as e:
            raise InputError(f"{q(path)}: cannot start the decoder ({e.strerror or e})") from None
        self.thread = threading.Thread(target=self._read_log, daemon=True)
        self.thread.start()

    def _read_log(self) -> None:
        in_input = True
        try:
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                m = _LEVEL.match(line)
                level, text = (m[1], m[2]) if m else ("", line)
                if "Parsed_showinfo" in line:
                    self._showinfo(text)
                elif level in ("error", "fatal"):
                    with self.cond:
                        self.errors.append(text)
                elif in_input:
                    if text.startswith(("Stream mapping", "Output #")):
                        in_input = False
                    self._header(text)
        except (OSError, ValueError):
            pass
        finally:
            with self.cond:
                self.ended = True
                self.cond.notify_all()

    def _header(self, text: str) -> None:
        h = self.header
        if m := re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", text):
            h["duration"] = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
        elif "Stream #" in text and ": Video:" in text and not h["video"] and "attached pic" not in text:
            h["video"] = True
            for key in ("fps", "tbr"):
                if m := re.search(r"([\d.]+)(k?) " + key + r"\b", text):
                    h[key] = float(m[1]) * (1000 if m[2] else 1)
        elif "Stream #" in text and ": Audio:" in text and h["audio"] is None:
            if m := re.search(r": Audio: ([\w-]+)", text):
                h["audio"] = m[1]

    def _showinfo(self, text: str) -> None:
        if m := re.search(r"config in time_base: (\d+)/(\d+)", text):
            if int(m[1]) > 0 and int(m[2]) > 0:
                self.time_base = Fraction(int(m[1]), int(m[2]))
            return
        m = _SHOWINFO.search(text)
        if m is None:
            return
        pts = int(m[1]) if m[1].lstrip("-").isdigit() else None
        dur = int(m[2]) if m[2] and m[2].lstrip("-").isdigit() else None
        with self.cond:
            self.stamps.append((pts, dur, (int(m[3]), int(m[4])), self.time_base))
            self.cond.notify_all()

    def next_stamp(self):
        """The next frame's (pts, duration, size, time base), or None when ffmpeg has ended."""
        with self.cond:
            self.cond.wait_for(lambda: self.stamps or self.ended)
            return self.stamps.popleft() if self.stamps else None

    def reason(self) -> str:
        with self.cond:
            errors = list(self.errors)
        return ffmpeg_reason("\n".join(errors))

    def close(self) -> None:
        """End ffmpeg (if it still runs) and its log reader; safe to call more than once."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.thread.join(timeout=5)
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


class _FrameStream(Iterator):
    """Frames from a generator, with ``close`` ending the decoder too, even when no frame was asked
    for (a generator that never started would not run its clean-up), and on garbage collection."""

    def __init__(self, gen: Iterator, closer):
        self._gen, self._closer = gen, closer

    def __next__(self):
        return next(self._gen)

    def close(self) -> None:
        try:
            self._gen.close()  # ValueError if it is running in another thread: the decoder is ended anyway
        finally:
            self._closer()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def read_timed_video(path: str | Path, max_size: int | None = None) -> tuple[VideoInfo, Iterator[TimedFrame]]:
    """Open a video: (info, iterator of ``TimedFrame``: (H, W, 3) uint8 RGB with its timestamp).
    Every source frame comes once, in order (no frame duplicated or dropped, whatever the frame
    rate does). InputError on anything unreadable; close the iterator to end the decoder early."""
    path = check_input_file(path, "video")
    dec = _Decoder(path, max_size)
    try:
        first = dec.next_stamp()
        if first is None:
            rc = dec.proc.wait()
            dec.thread.join(timeout=5)
            reason = dec.reason()
            if not dec.header["video"]:
                if rc != 0 and dec.errors and "matches no streams" not in reason:
                    raise InputError(f"{q(path)}: not a readable video ({reason})")
                raise InputError(f"{q(path)}: no video stream")
            if rc != 0:
                raise InputError(f"{q(path)}: decoding failed ({reason})")
            raise InputError(f"{q(path)}: the video has no frames")
        w, h = first[2]
        if w <= 0 or h <= 0:
            raise InputError(f"{q(path)}: no video stream")
        if w * h > MAX_VIDEO_PIXELS:
            raise InputError(f"{q(path)}: {w}x{h} frames are too large (use --max-size)")
    except BaseException:
        dec.close()
        raise
    hd = dec.header
    fps = exact_fps(hd["fps"] or hd["tbr"] or 0)
    tb = first[3]
    start = Fraction(first[0]) * tb if first[0] is not None and first[0] > 0 else Fraction(0)
    variable = bool(hd["fps"] and hd["tbr"] and abs(hd["fps"] - hd["tbr"]) > 0.006)
    info = VideoInfo(path=path, size=(w, h), fps=fps, duration=hd["duration"], audio_codec=hd["audio"],
                     time_base=tb, start=start, variable=variable)

    # a first frame before the file's start (negative timestamps): the frames are moved to start at 0
    shift = -Fraction(first[0]) * tb if first[0] is not None and first[0] < 0 else Fraction(0)

    def frames() -> Iterator[TimedFrame]:
        stamp, prev = first, None
        step = 1 / fps if fps > 0 else Fraction(1, 25)
        try:
            while stamp is not None:
                buf = dec.proc.stdout.read(w * h * 3)
                if len(buf) != w * h * 3:
                    break  # ffmpeg ended (or was ended) before the frame was whole
                pts_ticks, dur_ticks, _, base = stamp
                pts = Fraction(pts_ticks) * base + shift if pts_ticks is not None else None
                if pts is None:  # no timestamp: one frame on from the last
                    pts = prev + step if prev is not None else Fraction(0)
                dur = Fraction(dur_ticks) * base if dur_ticks and dur_ticks > 0 else Fraction(0)
                prev = pts
                yield TimedFrame(np.frombuffer(buf, np.uint8).reshape(h, w, 3), pts, dur)
                stamp = dec.next_stamp()
            if dec.proc.wait() != 0:
                raise InputError(f"{q(path)}: decoding failed ({dec.reason()})")
        finally:
            dec.close()

    return info, _FrameStream(frames(), dec.close)


def read_video(path: str | Path, max_size: int | None = None) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """Open a video: (info, frame iterator of (H, W, 3) uint8), every source frame once.
    InputError on anything unreadable."""
    info, timed = read_timed_video(path, max_size)
    return info, _FrameStream((fr.image for fr in timed), timed.close)


def measure_video(path: str | Path) -> Timing:
    """Frame count and timing of a video's first video stream, by decoding it (every frame once):
    for checks and tests, the same measure for an input and its output."""
    info, timed = read_timed_video(path)
    t = Timing(tick=info.time_base)
    try:
        for fr in timed:
            t.add(fr.pts, fr.duration)
    finally:
        timed.close()
    return t


# -- a minimal Matroska stream: raw RGB frames, each with its timestamp, for ffmpeg's stdin ------------

def _ebml_size(n: int) -> bytes:
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return ((1 << (7 * length)) | n).to_bytes(length, "big")
    raise ValueError(f"element of {n} bytes is too large")


def _ebml(element_id: bytes, payload: bytes) -> bytes:
    return element_id + _ebml_size(len(payload)) + payload


def _ebml_uint(element_id: bytes, value: int) -> bytes:
    return _ebml(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def mkv_header(width: int, height: int) -> bytes:
    """EBML header, a Segment of unknown size (a stream), nanosecond timestamps, one raw RGB24 track."""
    ebml = _ebml(b"\x1a\x45\xdf\xa3", _ebml_uint(b"\x42\x86", 1) + _ebml_uint(b"\x42\xf7", 1)
                 + _ebml_uint(b"\x42\xf2", 4) + _ebml_uint(b"\x42\xf3", 8) + _ebml(b"\x42\x82", b"matroska")
                 + _ebml_uint(b"\x42\x87", 4) + _ebml_uint(b"\x42\x85", 2))
    segment = b"\x18\x53\x80\x67" + b"\x01\xff\xff\xff\xff\xff\xff\xff"
    info = _ebml(b"\x15\x49\xa9\x66", _ebml_uint(b"\x2a\xd7\xb1", 1) + _ebml(b"\x4d\x80", b"dinstyle")
                 + _ebml(b"\x57\x41", b"dinstyle"))  # TimestampScale 1 ns
    video = _ebml(b"\xe0", _ebml_uint(b"\xb0", width) + _ebml_uint(b"\xba", height)
                  + _ebml(b"\x2e\xb5\x24", b"RGB\x18"))  # ColourSpace: the raw RGB24 FourCC
    track = _ebml(b"\xae", _ebml_uint(b"\xd7", 1) + _ebml_uint(b"\x73\xc5", 1) + _ebml_uint(b"\x83", 1)
                  + _ebml(b"\x86", b"V_UNCOMPRESSED") + video)
    return ebml + segment + info + _ebml(b"\x16\x54\xae\x6b", track)


def mkv_frame_head(nbytes: int, pts_ns: int, duration_ns: int) -> tuple[bytes, bytes]:
    """(what goes before, what goes after) ``nbytes`` of frame data: a Cluster at ``pts_ns`` holding
    one BlockGroup (the frame as a keyframe Block, and its BlockDuration)."""
    block_head = b"\x81" + struct.pack(">h", 0) + b"\x00"  # track 1, at the cluster's time, no flags
    block = b"\xa1" + _ebml_size(len(block_head) + nbytes) + block_head
    tail = _ebml_uint(b"\x9b", max(0, duration_ns))
    group = b"\xa0" + _ebml_size(len(block) + nbytes + len(tail))
    ts = _ebml_uint(b"\xe7", pts_ns)
    cluster = b"\x1f\x43\xb6\x75" + _ebml_size(len(ts) + len(group) + len(block) + nbytes + len(tail))
    return cluster + ts + group + block, tail


class VideoWriter:
    """Write frames to ``dest`` (H.264 yuv420p by default) with the source's audio, atomically.

    Each frame is written at the timestamp given (seconds; by default one ``1/fps`` after the last),
    kept exactly in ``time_base`` (the source's, so a constant rate stays constant and an uneven
    one keeps its unevenness); ``start`` is the source's first timestamp, so the video keeps its
    place against the audio; ``variable_rate``: the times are uneven (no B-frames, see ``_command``).
    Use as a context manager; the file appears at ``dest`` only if the block completes. ffmpeg runs
    in its own session (a Ctrl-C in the terminal reaches only us), its log goes to a temp file, and
    on any error or interrupt it is killed and its temp file removed. ``timing`` records what was written (frame count, duration, whether the rate varies).
    """

    def __init__(self, dest: str | Path, size: tuple[int, int], fps: Fraction, *, audio_from: Path | None = None,
                 audio_codec: str | None = None, codec: str = "libx264", crf: int = 18, preset: str = "veryfast",
                 time_base: Fraction | None = None, start: Fraction = Fraction(0), variable_rate: bool = False):
        if size[0] % 2 or size[1] % 2:
            raise OptionError(f"video frames must have even sides for yuv420p, got {size[0]}x{size[1]}")
        if not 0 <= crf <= 51:
            raise OptionError(f"--crf {crf}: must be between 0 and 51")
        fps = Fraction(fps)
        if time_base is None or time_base <= 0:
            time_base = 1 / fps if fps > 0 else Fraction(1, 1000)
        if time_base < Fraction(1, 1_000_000):  # a finer base than muxers keep: microseconds do
            time_base = Fraction(1, 1_000_000)
        self.dest, self.size, self.fps, self.time_base = Path(dest), size, fps, Fraction(time_base)
        self.start = max(Fraction(start), Fraction(0))
        self.audio_from, self.audio_codec = audio_from, audio_codec
        self.codec, self.crf, self.preset = codec, crf, preset
        self.variable_rate = variable_rate
        self.frames = 0
        self.timing = Timing(tick=self.time_base)
        self._held = None  # the last frame given: written when the next one says how long it lasts
        self._last_ticks: int | None = None  # of the last frame given
        self._prev_ticks: int | None = None  # of the last frame written

    def _command(self, tmp: Path) -> list[str]:
        tb = self.time_base
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-nostdin", "-f", "matroska"]
        if self.start > 0:
            cmd += ["-itsoffset", f"{float(self.start):.9f}"]  # ffmpeg would start the video at 0
        cmd += ["-i", "-"]
        audio = []
        if self.audio_from is not None and self.audio_codec:
            copy = self.audio_codec in COPYABLE_AUDIO or self.dest.suffix.lower() == ".mkv"
            cmd += ["-i", str(self.audio_from)]
            audio = ["-acodec", "copy" if copy else "aac", "-map", "0:v:0", "-map", "1:a:0"]
        else:
            cmd += ["-an"]
        cmd += ["-fps_mode", "passthrough", "-enc_time_base", f"{tb.numerator}/{tb.denominator}",
                "-vcodec", self.codec, "-pix_fmt", "yuv420p"]
        if self.codec != "libx264":
            cmd += ["-qscale:v", "16"]  # the quality imageio-ffmpeg gave other encoders (x264: --crf below)
        out = ["-movflags", "+faststart"] if self.dest.suffix.lower() in (".mp4", ".mov", ".m4v") else []
        if self.codec in ("libx264", "libx265"):
            out = ["-crf", str(self.crf), "-preset", self.preset] + out
            if self.variable_rate:  # B-frames' decoding-order timestamps would make an .mp4 of uneven
                out = ["-bf", "0"] + out  # timing declare a shorter duration than its frames play
        return cmd + ["-v", "error"] + out + audio + [str(tmp)]

    def __enter__(self) -> "VideoWriter":
        self._atomic = atomic_path(self.dest)
        self._tmp = self._atomic.__enter__()
        self._log = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(self._command(self._tmp), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._log, start_new_session=True)
        except OSError as e:
            self._log.close()
            self._atomic.__exit__(type(e), e, None)
            raise OutputError(f"{q(self.dest)}: cannot start the encoder ({e.strerror or e})") from None
        try:
            self._send(mkv_header(*self.size))
        except BaseException as e:
            self._kill()
            self._log.close()
            self._atomic.__exit__(type(e), e, None)
            raise
        return self

    def _reason(self) -> str:
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        return ffmpeg_reason(text, {str(self._tmp): str(self.dest)})

    def _failed(self) -> OutputError:
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        return OutputError(f"{q(self.dest)}: encoding failed ({self._reason()})")

    def _send(self, *chunks) -> None:
        try:
            for chunk in chunks:
                self._proc.stdin.write(chunk)
        except OSError:  # ffmpeg has gone: its log says why
            raise self._failed() from None

    def _emit(self, frame: np.ndarray, ticks: int, duration_ticks: int) -> None:
        w, h = self.size
        if frame.shape != (h, w, 3):
            raise OptionError(f"frame of {frame.shape} for a {w}x{h} video")
        data = np.ascontiguousarray(frame, dtype=np.uint8).data
        head, tail = mkv_frame_head(data.nbytes, round(ticks * self.time_base * 10**9),
                                    round(duration_ticks * self.time_base * 10**9))
        self._send(head, data, tail)
        self.timing.add(ticks * self.time_base, duration_ticks * self.time_base)
        self._prev_ticks = ticks

    def write(self, frame: np.ndarray, pts: Fraction | None = None, duration: Fraction | None = None) -> None:
        """Queue ``frame`` at ``pts`` seconds (default: one frame after the last); ``duration`` is used
        for the last frame only (the others last until the next)."""
        if pts is None:
            ticks = 0 if self._last_ticks is None else self._last_ticks + max(1, round(1 / self.fps / self.time_base))
        else:
            ticks = max(0, round(Fraction(pts) / self.time_base))
        if self._last_ticks is not None and ticks <= self._last_ticks:
            ticks = self._last_ticks + 1  # two frames at one time: the later one a tick on, both kept
        if self._held is not None:
            self._emit(self._held[0], self._held[1], ticks - self._held[1])
        self._held = (frame, ticks, duration)
        self._last_ticks = ticks
        self.frames += 1

    def _flush(self) -> None:
        """Write the held last frame: for its own duration, else as long as the gap before it."""
        if self._held is None:
            return
        frame, ticks, duration = self._held
        self._held = None
        dur = round(Fraction(duration) / self.time_base) if duration else 0
        if dur <= 0 and self._prev_ticks is not None:
            dur = ticks - self._prev_ticks
        if dur <= 0:
            dur = max(1, round(1 / self.fps / self.time_base)) if self.fps > 0 else 1
        self._emit(frame, ticks, dur)

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        try:
            self._proc.stdin.close()
        except OSError:
            pass

    def __exit__(self, et, ev, tb) -> bool:
        try:
            if et is None:
                self._flush()
                try:
                    self._proc.stdin.close()  # the end of the frames: ffmpeg finishes the file
                except OSError:
                    pass
                if self._proc.wait() != 0:
                    raise self._failed()
                if self.frames == 0:
                    raise InputError(f"{q(self.dest)}: the input has no frames; nothing written")
        except BaseException as e:  # a failure, or an interrupt while ffmpeg finishes
            self._kill()
            self._log.close()
            self._atomic.__exit__(type(e), e, None)  # removes the temp file
            raise
        if et is not None:
            self._kill()
        self._log.close()
        self._atomic.__exit__(et, ev, tb)  # renames on success, removes the temp file on error
        return False


def even_size(w: int, h: int) -> tuple[int, int]:
    return w + (w % 2), h + (h % 2)


def pad_even(frame: np.ndarray) -> np.ndarray:
    """Pad an odd-sided frame by one replicated row/column (yuv420p needs even sides)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def list_videos(items: list[str]) -> tuple[list[Path], list[str]]:
    files, problems = [], []
    for item in items:
        p = Path(item)
        problem = path_problem(p)
        if problem is None and p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and is_video(f) and not f.name.startswith("."))
            if not found:
                problems.append(f"{q(p)}: folder has no videos")
            files += found
        elif problem is None:
            files.append(p)
        else:
            problems.append(problem)
    return files, problems


def probe_frames(path: str | Path) -> tuple[int, float]:
    """(frame count, seconds) by decoding, for checks and tests."""
    return imageio_ffmpeg.count_frames_and_secs(str(path))


def has_audio(path: str | Path) -> bool:
    try:
        gen = imageio_ffmpeg.read_frames(str(path))
        meta = next(gen)
        gen.close()
    except (OSError, RuntimeError, StopIteration):
        return False
    return bool(meta.get("audio_codec"))

