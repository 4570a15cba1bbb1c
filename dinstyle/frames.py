"""One video's frame pipeline: decode -> prefetch -> batch -> stylize -> sink -> encode, streamed
with bounded queues.

The reader and the writer run in their own threads (ffmpeg itself runs in two subprocesses), so
decoding and encoding overlap with the network. Memory is bounded by the queue sizes, not by the
length of the video. The per-frame work is the content runner's, as for images. Many videos, their
names and skip/overwrite: ``batch.run_videos``.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dinstyle.events import Event
from dinstyle.config import STYLIZE
from dinstyle.errors import InputError, OptionError, OutputError
from dinstyle.io.files import q, remove_stale_temps
from dinstyle.io.video import VideoWriter, even_size, pad_even, read_timed_video, read_video
from dinstyle.palette import PaletteSmoother
from dinstyle.runner import StatsSmoother, check_render_options, network_size
from dinstyle.styles import RegionStyle

if TYPE_CHECKING:
    from dinstyle.engine import Stylizer
    from dinstyle.styles import AnyStyle

STATS_MODES = ("sequence", "frame")
_END = object()


def _prefetch(it: Iterator, maxsize: int, stop: threading.Event) -> Iterator:
    """Run ``it`` in a thread, handing items over through a bounded queue. When the consumer stops
    (end, error, interrupt: close this generator), the thread closes ``it``, which ends its decoder."""
    items: queue.Queue = queue.Queue(maxsize)

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in it:
                if not put(item):
                    return
            put(_END)
        except BaseException as e:  # handed to the consumer
            put(e)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = items.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=10)


class _Sink:
    """A bounded queue drained by a thread calling ``fn``; errors surface on ``put``/``close``."""

    def __init__(self, fn: Callable, maxsize: int):
        self.q: queue.Queue = queue.Queue(maxsize)
        self.error: BaseException | None = None
        self.aborted = False
        self.fn = fn
        self.t = threading.Thread(target=self._work, daemon=True)
        self.t.start()

    def _work(self):
        while True:
            item = self.q.get()
            if item is _END:
                return
            if self.error is None and not self.aborted:
                try:
                    self.fn(item)
                except BaseException as e:
                    self.error = e

    def put(self, item) -> None:
        if self.error:
            raise self.error
        self.q.put(item)

    def close(self, abort: bool = False) -> None:
        """Wait until everything put is written; ``abort``: drop what is still queued."""
        self.aborted = abort  # the thread skips the rest
        self.q.put(_END)
        self.t.join()
        if self.error:
            raise self.error


def auto_batch_size(st: "Stylizer", w: int, h: int) -> int:
    if st.device.type != "cuda":
        return 1
    return max(1, min(32, 33_000_000 // max(1, w * h)))


def stylize_video(st: "Stylizer", src: str | Path, style: "AnyStyle", dest: str | Path, *,
                  strength: float = STYLIZE.strength, palette: float = STYLIZE.palette, tone: float = STYLIZE.tone,
                  supersample: float = STYLIZE.supersample, preserve_color: bool = False, max_size: int | None = None,
                  stats: str = STYLIZE.stats, momentum: float = STYLIZE.momentum,
                  batch_size: int = STYLIZE.video_batch_size, crf: int = STYLIZE.crf, codec: str = STYLIZE.codec,
                  on_event: Callable[[Event], None] | None = None) -> dict:
    """Stylize one video into ``dest`` (written atomically) and return a summary record; a region
    style with a mask video takes one mask per frame from it. Every source frame is stylized once
    and written at its source timestamp, so frame count, duration and timing are kept (a variable
    frame rate too: the record's ``vfr``). ``on_event`` gets "progress" events (frames done, of
    about how many, frames per second)."""
    src, dest = Path(src), Path(dest)
    if stats not in STATS_MODES:
        raise OptionError(f"--stats {stats}: use {' or '.join(STATS_MODES)}")
    check_render_options(strength, palette, tone, supersample)
    if batch_size < 0:
        raise OptionError(f"--batch-size {batch_size}: must be >= 1 (or 0 for automatic)")
    if max_size is not None and max_size < 16:
        raise OptionError(f"--max-size {max_size}: must be at least 16")
    if dest.resolve() == src.resolve():
        raise OutputError(f"{q(dest)}: output would overwrite the input; choose another --out")
    remove_stale_temps(dest)
    info, frames = read_timed_video(src, max_size)
    closers: list[Callable[[], None]] = [frames.close]  # decoders to end however this returns
    try:
        return _stylize_stream(st, src, style, dest, info, frames, closers, strength=strength, palette=palette,
                               tone=tone, supersample=supersample, preserve_color=preserve_color, stats=stats, momentum=momentum, batch_size=batch_size,
                               crf=crf, codec=codec, on_event=on_event)
    finally:
        for close in closers:
            try:
                close()
            except ValueError:  # still running in a reader thread that did not stop in time
                pass


def _stylize_stream(st: "Stylizer", src: Path, style: "AnyStyle", dest: Path, info, frames: Iterator,
                    closers: list, *, strength: float, palette: float, tone: float, supersample: float,
                    preserve_color: bool, stats: str,
                    momentum: float,
                    batch_size: int, crf: int, codec: str, on_event) -> dict:
    w, h = info.size
    bs = batch_size or auto_batch_size(st, *network_size(w, h, supersample))
    mask_frames = None
    mask_video = style.mask_video if isinstance(style, RegionStyle) else None
    if mask_video is not None:
        _, mframes = read_video(mask_video)
        mask_frames = (f[..., 0] // 4 + f[..., 1] // 2 + f[..., 2] // 4 for f in mframes)  # grey levels
        closers.append(mframes.close)

    def masks_for(n: int):
        if mask_frames is None:
            return None
        out = [next(mask_frames, None) for _ in range(n)]
        if any(m is None for m in out):
            raise InputError(f"{q(mask_video)}: the mask video has fewer frames than {q(src)}")
        return out
    smoother = StatsSmoother(momentum) if stats == "sequence" else None
    palette_smoother = PaletteSmoother(momentum) if stats == "sequence" else None
    stop = threading.Event()
    t0 = time.perf_counter()
    done = 0
    total = info.frames_estimate
    with VideoWriter(dest, even_size(w, h), info.fps, audio_from=src if info.audio_codec else None,
                     audio_codec=info.audio_codec, codec=codec, crf=crf, time_base=info.time_base,
                     start=info.start, variable_rate=info.variable) as writer:
        sink = _Sink(lambda item: writer.write(pad_even(item[0]), *item[1:]), maxsize=2 * bs + 2)
        feed = _prefetch(frames, 2 * bs + 2, stop)
        closers.insert(0, feed.close)  # the reader thread first: it ends the decoder

        def run(batch: list) -> int:  # of TimedFrames: each output goes out with its frame's timestamp
            kw = dict(strength=strength, palette=palette, tone=tone, supersample=supersample,
                      preserve_color=preserve_color, stats_hook=smoother,
                      palette_hook=palette_smoother)
            images = [fr.image for fr in batch]
            if style.per_image:  # e.g. --mode auto from the library: each frame on its own
                outs = [st.runner.stylize_resilient([im], style.for_image(im), **kw)[0] for im in images]
            else:
                outs = st.runner.stylize_resilient(images, style, masks=masks_for(len(batch)), **kw)
            for o, fr in zip(outs, batch):
                sink.put((o, fr.pts, fr.duration))
            return len(batch)

        def progress(rate: float, steps: int) -> None:
            if on_event:
                on_event(Event("progress", input=str(src), output=str(dest), step=done, steps=steps, rate=rate))

        ok = False
        try:
            batch = []
            for frame in feed:
                batch.append(frame)
                if len(batch) < bs:
                    continue
                done += run(batch)
                batch = []
                progress(done / (time.perf_counter() - t0), max(total, done))
            if batch:
                done += run(batch)
            ok = True
        finally:
            stop.set()
            sink.close(abort=not ok)  # after an error or interrupt, queued frames are not encoded
        if done == 0:  # raised inside the block, so the writer removes its temp file
            raise InputError(f"{q(src)}: the video has no frames")
    secs = time.perf_counter() - t0
    progress(done / max(secs, 1e-9), done)
    timing = writer.timing
    vfr = timing.variable
    fps = str(round(timing.average_fps, 3)) if vfr else str(info.fps)  # VFR: the average rate
    return {"input": str(src), "output": str(dest), "style": style.label, "mode": style.mode, "stats": stats,
            "frames": done, "fps": fps, "vfr": vfr, "duration": round(timing.seconds, 3),
            "size": list(even_size(w, h)), "audio": bool(info.audio_codec), "seconds": round(secs, 3),
            "frames_per_second": round(done / max(secs, 1e-9), 2)}
