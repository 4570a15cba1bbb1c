"""Cluster batch runs on Ray: actors that each hold the model and the style once, mapped over files.

Inputs and outputs must be on storage that every node sees (a shared or network file system).
With no address a local Ray runtime is started on this machine.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dinstyle.batch import plan_outputs, run_images
from dinstyle.events import Event
from dinstyle.errors import DinstyleError, InputError, OptionError
from dinstyle.io.images import expand_inputs
from dinstyle.palette import Palette
from dinstyle.styles import Style


def _ray():
    try:
        import ray
    except ImportError:
        raise OptionError("cluster runs need Ray: pip install 'dinstyle[ray]'") from None
    return ray


class _Worker:
    """One Ray actor: loads the model once, receives the style's DIN parameters once."""

    def __init__(self, weights: str | None, device: str, style_state: dict, options: dict):
        import warnings

        from dinstyle.engine import Stylizer
        from dinstyle.model import DinParams

        warnings.simplefilter("ignore")
        self.st = Stylizer(weights=weights, device=device)
        params = DinParams(style_state["mode"], style_state["params"]).to(self.st.device)
        palette = style_state.get("palette")
        self.style = Style(params=params, label=style_state["label"],
                           palette=None if palette is None else Palette(palette))
        self.options = options

    def run(self, src: str, dst: str) -> dict:
        try:
            summary = run_images(self.st, [src], self.style, out=dst, **self.options)
            ev = summary.events[0]
            return {"input": src, "output": dst, "status": ev.status, "seconds": round(ev.seconds, 4),
                    "size": list(ev.size) if ev.size else None, "error": ev.error}
        except DinstyleError as e:
            return {"input": src, "output": dst, "status": "failed", "error": str(e)}


def run_cluster(paths: list[str], style: Style, *, out: str | Path | None = None, address: str | None = None,
                workers: int | None = None, weights: str | None = None, options: dict | None = None,
                recursive: bool = False, on_event: Callable[[Event], None] | None = None) -> list[dict]:
    """Stylize files over a Ray cluster; returns one record per input (status done/skipped/failed),
    each also sent to ``on_event`` as it arrives (the record as the event's ``record``)."""
    ray = _ray()
    files, problems = expand_inputs(paths, recursive=recursive)
    if not files:
        raise InputError(problems[0] if problems else "no input images given")
    plan = plan_outputs(files, style, out, (options or {}).get("fmt"))
    records: list[dict] = []

    def emit(rec: dict) -> None:
        records.append(rec)
        if on_event:
            on_event(Event(rec["status"], len(records) - 1, len(files) + len(problems), rec["input"], rec["output"],
                           rec.get("seconds") or 0.0, error=rec.get("error"), record=rec))

    for p in problems:
        emit({"input": p.split(":")[0], "output": None, "status": "failed", "error": p})
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 **({} if address else {"num_cpus": workers or None}))
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        n = workers or max(1, gpus or int(ray.cluster_resources().get("CPU", 1)))
        actor = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1)(_Worker)
        state = ray.put({"params": [{k: v.detach().cpu() for k, v in p.items()} for p in style.params],
                         "label": style.label, "mode": style.mode,
                         "palette": None if style.palette is None else style.palette.pixels})
        device = "cuda" if gpus else "cpu"
        wdir = str(Path(weights).resolve()) if weights else None
        pool = ray.util.ActorPool([actor.remote(wdir, device, state, options or {}) for _ in range(n)])
        jobs = [(str(f.resolve()), str(plan[f].resolve())) for f in files]
        for rec in pool.map_unordered(lambda a, job: a.run.remote(*job), jobs):
            emit(rec)
    finally:
        if started:
            ray.shutdown()
    return records
