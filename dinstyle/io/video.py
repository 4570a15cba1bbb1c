"""Stream video frames in and out through imageio-ffmpeg's bundled ffmpeg. No torch here.

Frames are never all in memory: ``read_video`` yields them one at a time, ``VideoWriter`` pipes
them to ffmpeg as they come. The writer keeps the frame rate (as an exact fraction: 29.97 is
30000/1001), copies the audio stream of the source without re-encoding where the container allows,
and writes to a temp file that is renamed only when the video is complete. A variable-frame-rate
source is decoded at its average rate, so the constant-rate output keeps its duration (and about
its frame count) and stays in sync with the audio.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

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
    fps: Fraction
    duration: float
    audio_codec: str | None

    @property
    def frames_estimate(self) -> int:
        return max(0, round(self.duration * float(self.fps)))


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


def _stream_rates(path: Path) -> tuple[float | None, float | None]:
    """(average frame rate, tbr) of the first video stream, as ffmpeg describes the file."""
    try:
        r = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                           text=True, errors="replace", timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None, None
    for line in r.stderr.splitlines():
        if "Stream #" in line and "Video:" in line:
            found = []
            for key in ("fps", "tbr"):
                m = re.search(r"([\d.]+)(k?) " + key + r"\b", line)
                found.append(float(m[1]) * (1000 if m[2] else 1) if m else None)
            return found[0], found[1]
    return None, None


def _scale_filter(max_size: int | None) -> list[str]:
    if not max_size:
        return []
    m = int(max_size)
    return ["-vf", f"scale='if(gt(iw,ih),min({m},iw),-2)':'if(gt(iw,ih),-2,min({m},ih))'"]


def read_video(path: str | Path, max_size: int | None = None) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """Open a video: (info, frame iterator of (H, W, 3) uint8). InputError on anything unreadable."""
    path = check_input_file(path, "video")
    avg, tbr = _stream_rates(path)
    # variable frame rate (average rate != the stream's base rate): ffmpeg would emit frames at the
    # base rate (duplicating), so ask for the average rate, the rate the output is written at
    rate = ["-r", str(exact_fps(avg))] if avg and tbr and abs(avg - tbr) > 0.006 else []
    try:
        gen = imageio_ffmpeg.read_frames(str(path), output_params=_scale_filter(max_size) + rate)
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration, ValueError) as e:
        msg = str(e).strip().splitlines()
        hint = next((m for m in msg if "Invalid data" in m or "no video" in m.lower() or "moov atom" in m), "")
        raise InputError(f"{q(path)}: not a readable video{' (' + hint.strip()[:100] + ')' if hint else ''}") from None
    size = tuple(int(v) for v in meta.get("size") or (0, 0))
    if size[0] <= 0 or size[1] <= 0:
        gen.close()
        raise InputError(f"{q(path)}: no video stream")
    if size[0] * size[1] > MAX_VIDEO_PIXELS:
        gen.close()
        raise InputError(f"{q(path)}: {size[0]}x{size[1]} frames are too large (use --max-size)")
    fps = exact_fps(avg) if rate else exact_fps(float(meta.get("fps") or 0))
    info = VideoInfo(path=path, size=size, fps=fps,
                     duration=float(meta.get("duration") or 0), audio_codec=meta.get("audio_codec"))
    if info.fps <= 0:
        gen.close()
        raise InputError(f"{q(path)}: frame rate unknown; not a playable video")
    w, h = size

    def frames() -> Iterator[np.ndarray]:
        try:
            for buf in gen:
                if len(buf) != w * h * 3:
                    break  # a truncated last frame
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        except (OSError, RuntimeError) as e:
            log = str(e).split("=== stderr ===")[-1]
            raise InputError(f"{q(path)}: decoding failed ({ffmpeg_reason(log)})") from None
        finally:
            gen.close()

    return info, frames()


class VideoWriter:
    """Write frames to ``dest`` (H.264 yuv420p by default) with the source's audio, atomically.

    Use as a context manager; the file appears at ``dest`` only if the block completes. ffmpeg runs
    in its own session (a Ctrl-C in the terminal reaches only us), its log goes to a temp file, and
    on any error or interrupt it is killed and its temp file removed.
    """

    def __init__(self, dest: str | Path, size: tuple[int, int], fps: Fraction, *, audio_from: Path | None = None,
                 audio_codec: str | None = None, codec: str = "libx264", crf: int = 18, preset: str = "veryfast"):
        if size[0] % 2 or size[1] % 2:
            raise OptionError(f"video frames must have even sides for yuv420p, got {size[0]}x{size[1]}")
        if not 0 <= crf <= 51:
            raise OptionError(f"--crf {crf}: must be between 0 and 51")
        self.dest, self.size, self.fps = Path(dest), size, fps
        self.audio_from, self.audio_codec = audio_from, audio_codec
        self.codec, self.crf, self.preset = codec, crf, preset
        self.frames = 0

    def _command(self, tmp: Path) -> list[str]:
        w, h = self.size
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{w}x{h}",
               "-pix_fmt", "rgb24", "-r", str(self.fps), "-i", "-"]
        audio = []
        if self.audio_from is not None and self.audio_codec:
            copy = self.audio_codec in COPYABLE_AUDIO or self.dest.suffix.lower() == ".mkv"
            cmd += ["-i", str(self.audio_from)]
            audio = ["-acodec", "copy" if copy else "aac", "-map", "0:v:0", "-map", "1:a:0"]
        else:
            cmd += ["-an"]
        cmd += ["-vcodec", self.codec, "-pix_fmt", "yuv420p"]
        if self.codec != "libx264":
            cmd += ["-qscale:v", "16"]  # the quality imageio-ffmpeg gave other encoders (x264: --crf below)
        out = ["-movflags", "+faststart"] if self.dest.suffix.lower() in (".mp4", ".mov", ".m4v") else []
        if self.codec in ("libx264", "libx265"):
            out = ["-crf", str(self.crf), "-preset", self.preset] + out
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

    def write(self, frame: np.ndarray) -> None:
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except OSError:  # ffmpeg has gone: its log says why
            raise self._failed() from None
        self.frames += 1

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

