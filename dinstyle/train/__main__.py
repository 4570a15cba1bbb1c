"""`python -m dinstyle.train ...` = `dinstyle train ...`; for multi-GPU runs:

    torchrun --nproc-per-node 4 -m dinstyle.train --content DIR --style DIR --out runs/ddp
"""
from dinstyle.cli import app

app(["train", *__import__("sys").argv[1:]], prog_name="dinstyle train")
