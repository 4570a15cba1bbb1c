"""`python -m dinstyle.train ARGS` is `python -m dinstyle train ARGS` (the documented form, also for
multi-GPU runs: `torchrun --nproc-per-node 4 -m dinstyle train ...`).

Kept for old command lines: it replaces this process with that one (same PID and environment, so
torchrun still sees its workers), so the train package never imports the CLI above it.
"""
import os
import sys

os.execv(sys.executable, [sys.executable, "-m", "dinstyle", "train", *sys.argv[1:]])
