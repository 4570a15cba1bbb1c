"""How the CLI shows things: errors and warnings on stderr (one line each), exit codes, progress
bars, --json records on stdout, and the per-command views of the library's events and results.
Nothing here decides what runs."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

from dinstyle.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, DinstyleError, OutputError
from dinstyle.io.files import q

err = Console(stderr=True, highlight=False)
STATE = {"traceback": False}


class Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, systemd, docker stop, batch schedulers), raised in the main thread like
    Ctrl-C, so the same clean-up runs: stop at a boundary, remove temps, end ffmpeg, summarise."""


def interrupted(e: BaseException) -> tuple[str, int]:
    return ("terminated", EXIT_TERMINATED) if isinstance(e, Terminated) else ("interrupted", EXIT_INTERRUPTED)


def clean(text) -> str:
    """``text`` as one printable line: control characters escaped (a newline in a file name cannot
    split a message) and rich markup in it shown as is."""
    return escape("".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text)))


def error(msg) -> None:
    err.print(f"[red]error:[/red] {clean(msg)}", soft_wrap=True)


def say(msg) -> None:
    err.print(clean(msg), soft_wrap=True)


def drop_stdout() -> None:
    """After stdout failed (full disk, closed pipe), what is still buffered goes to /dev/null, so
    Python's exit does not print a second error."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


def echo_json(record, indent: int | None = None) -> None:
    """One JSON record on stdout; a stdout that cannot take it is one clear error."""
    try:
        typer.echo(json.dumps(record, indent=indent))
    except OSError as e:
        drop_stdout()
        raise OutputError(f"stdout: cannot write the JSON output ({e.strerror or e})") from None


def _fail(msg: str, code: int, json_out: bool) -> None:
    error(msg)
    if json_out:  # stdout says it too, for scripts reading only it
        with contextlib.suppress(DinstyleError):
            echo_json({"status": "error", "error": msg, "exit_code": code})
    raise typer.Exit(code)


@contextlib.contextmanager
def errors(json_out: bool = False):
    """Turn library errors into one stderr line + exit code (and, with --json, an error record on
    stdout); show warnings as one line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except DinstyleError as e:
            show_warnings(caught)
            if STATE["traceback"]:
                raise
            _fail(str(e), e.exit_code, json_out)
        except KeyboardInterrupt as e:
            word, code = interrupted(e)
            err.print(f"[yellow]{word}[/yellow]")
            if json_out:
                with contextlib.suppress(DinstyleError):
                    echo_json({"status": word, "exit_code": code})
            raise typer.Exit(code) from None
        except (MemoryError, OSError) as e:  # a safety net: the library should have said it in its words
            if STATE["traceback"]:
                raise
            if isinstance(e, MemoryError):
                msg = "out of memory; try --max-size (or a smaller --style-size)"
            else:
                msg = f"{q(e.filename)}: {e.strerror}" if e.filename and e.strerror else (e.strerror or str(e))
            _fail(msg, EXIT_USAGE, json_out)
        show_warnings(caught)


def show_warnings(caught) -> None:
    seen = set()
    for w in caught:
        msg = str(w.message)
        if msg in seen or issubclass(w.category, (DeprecationWarning, FutureWarning, ResourceWarning)):
            continue
        seen.add(msg)
        err.print(f"[yellow]warning:[/yellow] {clean(msg)}", soft_wrap=True)


def report_problems(problems: list[str], files: list, json_out: bool = False) -> int:
    """One error line per input that was not found; exit 2 if no input was. Returns how many."""
    for p in problems:
        error(p)
        if json_out:
            echo_json({"status": "failed", "error": p})
    if not files:
        raise typer.Exit(EXIT_USAGE)
    return len(problems)


def batch_exit(failed: int, succeeded: int) -> None:
    """Exit 2 when nothing succeeded, 1 when a batch finished with some failures."""
    if failed:
        raise typer.Exit(EXIT_USAGE if succeeded == 0 else EXIT_FAILED)


def progress(enabled: bool, *fields: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *map(TextColumn, fields),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err, disable=not enabled,
                    transient=False)


# -- views of batch events -----------------------------------------------------------------------

class BatchView:
    """Renders a batch's events (``dinstyle.batch.Event``): a bar over the inputs, a line per failure
    and skip, the --json records; keeps the tally for the summary and for an interrupt."""

    what = "stylizing"
    say_skipped_in_json = False  # video: the skip line is shown even with --json

    def __init__(self, total: int, json_out: bool, bar: bool = True):
        self.json_out = json_out
        self.counts = {"done": 0, "skipped": 0, "failed": 0}
        self.prog = progress(bar and total > 1 and not json_out)
        self.task = self.prog.add_task(self.what, total=total)

    def __enter__(self) -> "BatchView":
        self.prog.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.prog.__exit__(*exc)

    def __call__(self, ev) -> None:
        if ev.status == "progress":
            return self.progress(ev)
        self.counts[ev.status] += 1
        self.prog.advance(self.task)
        if ev.status == "failed":
            error(ev.error)
        elif ev.status == "skipped" and (self.say_skipped_in_json or not self.json_out):
            say(f"skipped {ev.output}: {ev.error}")
        if self.json_out and ev.record is not None:
            echo_json(ev.record)
        if ev.status == "done" and not self.json_out:
            self.done(ev)

    def progress(self, ev) -> None:
        pass

    def done(self, ev) -> None:
        pass

    def interrupted(self, e: BaseException, note: str = "") -> None:
        c = self.counts
        err.print(f"{interrupted(e)[0]}: {c['done']} written, {c['skipped']} skipped, {c['failed']} failed{note}; "
                  "run the same command again to finish (finished outputs are skipped)")


class ImageView(BatchView):
    def summary(self, summary) -> None:
        if self.json_out:
            return
        done = [e for e in summary.events if e.status == "done"]
        if len(done) == 1 and summary.failed == 0:
            say(f"wrote {done[0].output}")
        else:
            err.print(f"{summary.done} written, {summary.skipped} skipped, {summary.failed} failed")


class PackView(BatchView):
    what = "encoding styles"


class VideoView(BatchView):
    """No bar over the videos: a live bar per video (on a terminal only, gone when done) over its frames."""

    say_skipped_in_json = True

    def __init__(self, total: int, json_out: bool):
        super().__init__(total, json_out, bar=False)
        self.live = None

    def progress(self, ev) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self.live is None or self.live[0] != ev.input:
            self._close()
            prog = Progress(TextColumn(f"[bold]{escape(os.path.basename(ev.input))}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[fps]} fps"), TextColumn("eta"),
                            TimeRemainingColumn(), console=err, disable=self.json_out or not err.is_terminal,
                            transient=True)
            prog.__enter__()
            self.live = (ev.input, prog, prog.add_task("frames", total=None, fps="-"))
        _, prog, task = self.live
        prog.update(task, completed=ev.step, total=ev.steps, fps=f"{ev.rate:.1f}")

    def _close(self) -> None:
        if self.live is not None:
            self.live[1].__exit__(None, None, None)
            self.live = None

    def __call__(self, ev) -> None:
        if ev.status != "progress":
            self._close()
        super().__call__(ev)

    def __exit__(self, *exc) -> None:
        self._close()
        super().__exit__(*exc)

    def done(self, ev) -> None:
        rec = ev.record
        if rec.get("vfr"):  # the input's frame rate varies: say so, and that its timing was kept
            timing = (f"{rec['frames']} frames over {rec['duration']:g} s, variable frame rate (average "
                      f"{rec['fps']} fps): every frame kept at its source timestamp")
        else:
            timing = f"{rec['frames']} frames at {rec['fps']} fps"
        say(f"wrote {rec['output']}: {timing}, {'audio copied' if rec['audio'] else 'no audio'}, "
            f"{rec['frames_per_second']} frames/s")


class ClusterView(BatchView):
    """Records as the cluster sends them, with the style's label; skipped inputs count as done."""

    def __init__(self, json_out: bool, label: str):
        super().__init__(0, json_out, bar=False)
        self.label = label

    def __call__(self, ev) -> None:
        self.counts["failed" if ev.status == "failed" else "done"] += 1
        if ev.status == "failed":
            error(ev.error)
        if self.json_out:
            echo_json({**ev.record, "style": self.label})


# -- views of results ----------------------------------------------------------------------------

def info_table(d: dict, console) -> None:
    """`dinstyle info` as a table (a pack's text is untrusted: shown, never read as markup)."""
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    state = "[green]trained[/green]" if d["trained"] else "[red]UNTRAINED (outputs are not a real stylization)[/red]"
    t.add_row("model", f"{d['model']}  id {d['model_id']}  {state}")
    t.add_row("weights", escape(str(d["weights"])))
    k = d["config"].get("texture_kernel")
    modes = [f"{m} (with a {k}x{k} texture filter)" if m == "standard" and k else m for m in d["modes"]]
    t.add_row("modes", ", ".join(modes) + " (and auto for images)")
    if d.get("training"):
        tr = d["training"]
        t.add_row("training", f"{tr.get('steps')} steps, batch {tr.get('batch_size')}, crop {tr.get('crop')}, "
                              f"device {tr.get('device')}")
    p = d["parameters"]
    t.add_row("parameters", f"content path {p['content_path']:,}; weight/bias nets {p['weight_bias_nets']:,}; "
                            f"style encoder (VGG-19 to relu4_1) {p['style_encoder_vgg19']:,}")
    m = d["macs_512"]
    t.add_row("MACs @512x512", f"content path {m['total'] / 1e9:.2f} G (encoder {m['encoder'] / 1e9:.2f}, "
                               f"DIN {m['din'] / 1e9:.3f}, decoder {m['decoder'] / 1e9:.2f})")
    t.add_row("device", f"{d['device']} ({d['dtype']}), torch {d['torch']}, {d['threads']} threads"
              + (f", {d['cuda']}" if d.get("cuda") else ""))
    if "pack" in d:
        pk = {k: escape(repr(v)[1:-1]) if isinstance(v, str) else v for k, v in d["pack"].items()}  # untrusted text
        ok = "[green]compatible[/green]" if pk["compatible"] else f"[red]incompatible[/red]: {pk['problem']}"
        t.add_row("pack", f"{pk['path']}: from {pk['source']}, mode {pk['mode']}, encoded at {pk['style_size']} px, "
                          f"model {pk['model_id']}, {pk['values']} values in {len(pk['layers'])} layers, "
                          + (f"palette of {pk['palette_pixels']:,} pixels; " if pk.get("palette_pixels") else
                             "no palette (made before packs kept one: the network's own colours); ") + ok)
    console.print(t)


def eval_table(rows: list[dict], model_id: str) -> None:
    from rich.table import Table

    r0 = rows[0]
    how = "" if "palette" not in r0 else (f", strength {r0['strength']:g}, palette {r0['palette']:g}, "
                                          f"tone {r0['tone']:g}, supersample {r0['supersample']:g}")
    t = Table(title=f"dinstyle eval ({r0['pairs']} pairs, model {model_id}{how})")
    for col in ("mode", "style loss", "content loss", "SSIM", "flat kept flat", "stripe (contents)",
                "colour dist. (contents)", "light made dark", "distinct RGB / grey (chance)", "s / image"):
        t.add_column(col, justify="right")

    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    for r in rows:
        t.add_row(r["mode"], f"{r['style_loss']:.3f}", f"{r['content_loss']:.3f}", f"{r['ssim']:.3f}",
                  num(r["flat_const"], ".3f"), f"{r['stripe']:.2f} ({r['content_stripe']:.2f})",
                  f"{r['color']:.3f} ({r['content_color']:.3f})", num(r.get("dark_patches"), ".3f"),
                  f"{num(r['distinct_rgb'], '.2f')} / {num(r['distinct_grey'], '.2f')} ({num(r['distinct_chance'], '.2f')})",
                  num(r["seconds_per_image"], ".3f"))
    Console().print(t)


def styles_table(styles) -> None:
    from rich.table import Table

    t = Table(title="built-in styles (dinstyle image photo.jpg --style NAME)")
    for col in ("name", "painter", "work", "year", "licence"):
        t.add_column(col, no_wrap=col in ("name", "year"))
    for s in styles:
        t.add_row(s.name, s.painter, s.title, s.year, s.licence)
    Console(highlight=False).print(t)
