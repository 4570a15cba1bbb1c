"""Stream video frames in and out through imageio-ffmpeg's bundled ffmpeg. No torch here.

Frames are never all in memory: ``read_video`` yields them one at a time, ``VideoWriter`` pipes
them to ffmpeg as they come. The writer keeps the frame rate (as an exact fraction: 29.97 is
30000/1001), copies the audio stream of the source without re-encoding where the container allows,
and writes to a temp file that is renamed only when the video is complete.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from dinstyle.errors import InputError, OptionError, OutputError
from dinstyle.io.files import atomic_path, check_input_file

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
    codec: str | None
    rotate: int

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


def _scale_filter(max_size: int | None) -> list[str]:
    if not max_size:
        return []
    m = int(max_size)
    return ["-vf", f"scale='if(gt(iw,ih),min({m},iw),-2)':'if(gt(iw,ih),-2,min({m},ih))'"]


def read_video(path: str | Path, max_size: int | None = None) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """Open a video: (info, frame iterator of (H, W, 3) uint8). InputError on anything unreadable."""
    path = check_input_file(path, "video")
    try:
        gen = imageio_ffmpeg.read_frames(str(path), output_params=_scale_filter(max_size))
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration, ValueError) as e:
        msg = str(e).strip().splitlines()
        hint = next((m for m in msg if "Invalid data" in m or "no video" in m.lower() or "moov atom" in m), "")
        raise InputError(f"{path}: not a readable video{' (' + hint.strip()[:100] + ')' if hint else ''}") from None
    size = tuple(int(v) for v in meta.get("size") or (0, 0))
    if size[0] <= 0 or size[1] <= 0:
        gen.close()
        raise InputError(f"{path}: no video stream")
    if size[0] * size[1] > MAX_VIDEO_PIXELS:
        gen.close()
        raise InputError(f"{path}: {size[0]}x{size[1]} frames are too large (use --max-size)")
    info = VideoInfo(path=path, size=size, fps=exact_fps(float(meta.get("fps") or 0)),
                     duration=float(meta.get("duration") or 0), audio_codec=meta.get("audio_codec"),
                     codec=meta.get("codec"), rotate=int(meta.get("rotate") or 0))
    if info.fps <= 0:
        gen.close()
        raise InputError(f"{path}: frame rate unknown; not a playable video")
    w, h = size

    def frames() -> Iterator[np.ndarray]:
        try:
            for buf in gen:
                if len(buf) != w * h * 3:
                    break  # a truncated last frame
                yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        except (OSError, RuntimeError) as e:
            raise InputError(f"{path}: decoding failed ({str(e).strip().splitlines()[-1][:100]})") from None
        finally:
            gen.close()

    return info, frames()


class VideoWriter:
    """Write frames to ``dest`` (H.264 yuv420p by default) with the source's audio, atomically.

    Use as a context manager; the file appears at ``dest`` only if the block completes.
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

    def __enter__(self) -> "VideoWriter":
        self._atomic = atomic_path(self.dest)
        tmp = self._atomic.__enter__()
        out = ["-movflags", "+faststart"] if self.dest.suffix.lower() in (".mp4", ".mov", ".m4v") else []
        if self.codec in ("libx264", "libx265"):
            out = ["-crf", str(self.crf), "-preset", self.preset] + out
        audio = {}
        if self.audio_from is not None and self.audio_codec:
            copy = self.audio_codec in COPYABLE_AUDIO or self.dest.suffix.lower() == ".mkv"
            audio = {"audio_path": str(self.audio_from), "audio_codec": "copy" if copy else "aac"}
        try:
            self._gen = imageio_ffmpeg.write_frames(str(tmp), self.size, fps=self.fps, codec=self.codec,
                                                    macro_block_size=1, output_params=out, ffmpeg_log_level="error",
                                                    **audio)
            self._gen.send(None)
        except (OSError, RuntimeError) as e:
            self._atomic.__exit__(type(e), e, None)
            raise OutputError(f"{self.dest}: cannot start the encoder ({str(e).splitlines()[0][:120]})") from None
        return self

    def write(self, frame: np.ndarray) -> None:
        try:
            self._gen.send(np.ascontiguousarray(frame))
        except (OSError, RuntimeError, BrokenPipeError) as e:
            raise OutputError(f"{self.dest}: encoding failed ({str(e).strip().splitlines()[-1][:120]})") from None
        self.frames += 1

    def __exit__(self, et, ev, tb) -> bool:
        err: Exception | None = None
        try:
            self._gen.close()
        except (OSError, RuntimeError) as e:
            err = OutputError(f"{self.dest}: encoder failed ({str(e).strip().splitlines()[-1][:120]})")
        if et is None and err is None and self.frames == 0:
            err = InputError(f"{self.dest}: the input has no frames; nothing written")
        if et is None and err is not None:
            self._atomic.__exit__(type(err), err, None)  # removes the temp file
            raise err
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
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and is_video(f) and not f.name.startswith("."))
            if not found:
                problems.append(f"{p}: folder has no videos")
            files += found
        elif p.exists():
            files.append(p)
        else:
            problems.append(f"{p}: no such file")
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

