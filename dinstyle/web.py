"""`dinstyle serve`: a local page to choose a style by looking. A thin Starlette layer over the engine.

    GET  /                       the page (data/web/index.html)
    GET  /api/styles             the built-in styles: name, painter, title, year, licence
    GET  /styles/{name}.jpg      a built-in style's picture
    POST /api/photo?name=F       body: an image file -> {"id", "name", "width", "height"}
    POST /api/painting?name=F    body: an image to use as a style -> the same
    GET  /api/render?photo=ID&style=NAME|ID&strength=1&palette=1&tone=0.7&supersample=1&mode=standard|adaptive
                     &preserve=0|1&size=thumb|preview|full   -> JPEG (thumb, preview) or a PNG download (full)

The model is loaded once (the Stylizer passed in); one lock serialises the engine, so concurrent
requests queue. Uploads are checked by the CLI's image reader, with its messages (through a private
temp folder removed at once), and kept decoded in memory, a few at a time. Errors are JSON
{"error": "one line"} with a 4xx status.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from dinstyle import builtin_styles
from dinstyle.config import STYLIZE, TOOLS
from dinstyle.engine import Stylizer
from dinstyle.palette import Palette
from dinstyle.styles import Style
from dinstyle.errors import DinstyleError, InputError, OptionError
from dinstyle.io.images import LoadedImage, fit_size, resize_rgb
from dinstyle.io.stream import encode_image, read_image_bytes

PAGE = Path(__file__).resolve().parent / "data" / "web" / "index.html"
SIZES = {"thumb": 256, "preview": 768, "full": None}  # long side of each kind of render
MAX_UPLOAD_BYTES = 64 * 2**20
MAX_PIXELS = int(TOOLS.max_megapixels * 1e6)  # per upload; the CLI allows 600 MP, a page answering in seconds does not
KEEP = 8  # uploads of each kind kept in memory (least recently used dropped)
MODES = ("standard", "adaptive")  # the page's toggle (of the DIN kinds, the two made for every style)


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class StyleServer:
    """The state behind the page: one Stylizer, recent uploads, encoded styles."""

    def __init__(self, st: Stylizer, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_UPLOAD_BYTES):
        self.st = st
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self.lock = threading.Lock()
        self.photos: OrderedDict[str, dict] = OrderedDict()  # id -> {"name", sizes: {kind: LoadedImage}}
        self.paintings: OrderedDict[str, dict] = OrderedDict()  # id -> {"name", "rgb", styles: {mode: Style}}

    # -- uploads -----------------------------------------------------------------------------
    def add(self, kind: str, data: bytes, name: str) -> dict:
        name = Path(name or "upload").name or "upload"
        with self.lock:
            img = read_image_bytes(data, name, max_pixels=self.max_pixels)
            key = secrets.token_hex(8)
            if kind == "photo":
                store, entry = self.photos, {"name": name, "sizes": {"full": img}}
            else:  # encoded now: a painting too small to be a style is refused here
                try:
                    style = Style(self.st.encode_style(img.rgb), label=Path(name).stem, palette=Palette.of(img.rgb))
                except InputError as e:
                    raise InputError(f"{name}: {e}") from None
                store, entry = self.paintings, {"name": name, "rgb": img.rgb, "styles": {"standard": style}}
            store[key] = entry
            while len(store) > KEEP:
                store.popitem(last=False)
        h, w = img.rgb.shape[:2]
        return {"id": key, "name": name, "width": w, "height": h}

    def _get(self, store: OrderedDict, key: str, what: str) -> dict:
        if key not in store:
            raise HTTPProblem(404, f"{what} {key!r} is not here (the server keeps the last {KEEP}); upload it again")
        store.move_to_end(key)
        return store[key]

    def _photo(self, key: str, size: str) -> tuple[LoadedImage, str]:
        entry = self._get(self.photos, key, "photo")
        if size not in entry["sizes"]:
            full = entry["sizes"]["full"]
            h, w = full.rgb.shape[:2]
            dims = fit_size(w, h, SIZES[size])
            alpha = None if full.alpha is None else resize_rgb(full.alpha[..., None].repeat(3, 2), dims)[..., 0]
            entry["sizes"][size] = LoadedImage(resize_rgb(full.rgb, dims), alpha, full.format, full.path)
        return entry["sizes"][size], entry["name"]

    def _style(self, name: str, mode: str) -> Style:
        if name in self.paintings:
            entry = self._get(self.paintings, name, "painting")
            if mode not in entry["styles"]:
                params = self.st.encode_style(entry["rgb"], mode)
                entry["styles"][mode] = Style(params=params, label=Path(entry["name"]).stem,
                                              palette=Palette.of(entry["rgb"]))
            return entry["styles"][mode]
        if name not in builtin_styles.STYLES:
            raise HTTPProblem(404, f"style {name!r}: neither a built-in style nor an uploaded painting")
        return self.st.builtin_style(name, mode)

    # -- renders -----------------------------------------------------------------------------
    def render(self, photo: str, style: str, size: str, strength: float, mode: str, preserve: bool,
               palette: float = STYLIZE.palette, tone: float = STYLIZE.tone,
               supersample: float = STYLIZE.supersample) -> tuple[bytes, str, float]:
        if size not in SIZES:
            raise OptionError(f"size {size}: use {', '.join(SIZES)}")
        if mode not in MODES:
            raise OptionError(f"mode {mode}: use {' or '.join(MODES)}")
        with self.lock:
            t0 = time.perf_counter()
            img, name = self._photo(photo, size)
            sty = self._style(style, mode)
            out = self.st.stylize_image(img, sty, strength=strength, palette=palette, tone=tone,
                                        supersample=supersample, preserve_color=preserve)
            full = size == "full"
            data = encode_image(out.rgb, out.alpha if full else None, "png" if full else "jpg", quality=90)
            seconds = time.perf_counter() - t0
        filename = "".join(c if (c.isascii() and c.isalnum()) or c in "+-._" else "_" for c in f"{Path(name).stem}_{sty.label}")
        return data, f"{filename}.png", seconds


def _number(text: str | None, name: str, default: float) -> float:
    try:
        return default if text is None else float(text)
    except ValueError:
        raise OptionError(f"{name} {text!r}: not a number") from None


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise HTTPProblem(413, f"upload is {int(length) / 2**20:.0f} MiB; the limit is {limit / 2**20:.0f} MiB")
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            raise HTTPProblem(413, f"upload is over the {limit / 2**20:.0f} MiB limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _problem(e: Exception) -> JSONResponse:
    if isinstance(e, HTTPProblem):
        status = e.status
    elif isinstance(e, InputError):
        status = 422  # the upload was read but refused: not an image, too many pixels, empty
    else:
        status = 400
    return JSONResponse({"error": str(e)}, status_code=status)


def create_app(st: Stylizer, **kw) -> Starlette:
    """The ASGI app around one loaded Stylizer (``kw``: max_pixels, max_bytes)."""
    srv = StyleServer(st, **kw)

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    async def styles(request: Request) -> Response:
        return JSONResponse([s.to_dict() for s in builtin_styles.STYLES.values()])

    async def style_image(request: Request) -> Response:
        s = builtin_styles.STYLES.get(request.path_params["name"])
        if s is None:
            return _problem(HTTPProblem(404, f"no built-in style {request.path_params['name']!r}"))
        return FileResponse(s.path, media_type="image/jpeg")

    def upload(kind: str):
        async def handler(request: Request) -> Response:
            try:
                data = await _body(request, srv.max_bytes)
                return JSONResponse(await run_in_threadpool(srv.add, kind, data, request.query_params.get("name", "")))
            except (HTTPProblem, DinstyleError) as e:
                return _problem(e)
        return handler

    async def render(request: Request) -> Response:
        q = request.query_params
        try:
            size = q.get("size", "preview")
            data, filename, seconds = await run_in_threadpool(
                srv.render, q.get("photo", ""), q.get("style", ""), size, _number(q.get("strength"), "strength", 1.0),
                q.get("mode", "standard"), q.get("preserve", "0") in ("1", "true", "on"),
                _number(q.get("palette"), "palette", STYLIZE.palette), _number(q.get("tone"), "tone", STYLIZE.tone),
                _number(q.get("supersample"), "supersample", STYLIZE.supersample))
        except (HTTPProblem, DinstyleError) as e:
            return _problem(e)
        headers = {"X-Render-Seconds": f"{seconds:.3f}", "Cache-Control": "no-store"}
        if size == "full":
            headers["Content-Disposition"] = f'attachment; filename="{filename}"'
            return Response(data, media_type="image/png", headers=headers)
        return Response(data, media_type="image/jpeg", headers=headers)

    return Starlette(routes=[
        Route("/", page), Route("/api/styles", styles), Route("/styles/{name}.jpg", style_image),
        Route("/api/photo", upload("photo"), methods=["POST"]),
        Route("/api/painting", upload("painting"), methods=["POST"]),
        Route("/api/render", render),
    ])


def serve(make_stylizer: Callable[[], Stylizer], *, host: str = TOOLS.host, port: int = TOOLS.port,
          max_megapixels: float = TOOLS.max_megapixels, on_listening: Callable[[str], None] | None = None) -> None:
    """Listen on ``host``:``port`` (0: a free port) and serve the page until interrupted; the model
    (``make_stylizer()``) is loaded once the address is taken. ``on_listening`` gets the page's URL."""
    import socket

    import uvicorn

    if not 0 <= port <= 65535 or max_megapixels <= 0:
        raise OptionError("--port must be 0..65535 and --max-megapixels > 0")
    try:
        sock = socket.create_server((host, port))
    except OSError as e:
        raise OptionError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    app = create_app(make_stylizer(), max_pixels=int(max_megapixels * 1e6))
    shown = f"[{host}]" if ":" in host else host
    if on_listening:
        on_listening(f"http://{shown}:{sock.getsockname()[1]}/")
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
