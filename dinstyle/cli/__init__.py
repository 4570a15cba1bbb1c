"""The `dinstyle` command: thin Typer commands that parse options, call the library and render its
events (``app.py``: the app and the process entry; ``options.py``: options shared by commands;
``render.py``: how things are shown; ``stylize.py`` and ``tools.py``: the commands).

Every library error is a DinstyleError; only this package turns it into a red line on stderr and an
exit code (2 bad input, 1 some files of a batch failed, 130 Ctrl-C, 143 SIGTERM). --traceback shows more.
"""
from dinstyle.cli import stylize, tools  # noqa: F401  (the commands register themselves on the app)
from dinstyle.cli.app import app, main

__all__ = ["app", "main"]
