"""The options of one training call applied over the defaults (a new run) or over a run's saved
settings (``--resume``): ``resume_config`` is the one place that decides what a resumed run keeps.

Options come as a dict of ``TrainConfig`` field names -> values, holding only what was given (the
CLI's options default to "not given"); every default is ``TrainConfig``'s. No torch here.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from dinstyle.config import ModelConfig, TrainConfig, texture_kernel_ok
from dinstyle.errors import OptionError

# This call's settings, given or default, never the run's: they describe the machine, not the run.
MACHINE = ("device", "workers", "amp", "checkpoint_every", "preview_every", "log_every", "compile")
# Where this call finds the data and the cache: this call's where it names them, else the run's.
PLACES = ("content_dir", "style_dir", "data_pack", "vgg", "style_cache_dir", "targets")
# ModelConfig fields a new run may set; a resumed run keeps its model.
MODEL = ("deform_kernel", "dec_blocks", "dec_fine_blocks", "texture_kernel")
AMP = ("auto", "bf16", "fp16", "none")
COMPILE = ("auto", "on", "off")
FLAGS = {"lr": "--lr", "steps": "--steps", "batch_size": "--batch-size"}


def check_ema(decay: float) -> None:
    """The weight average's decay (``--ema``): 0 (off) up to, not including, 1; NaN is refused."""
    if not 0 <= decay < 1:
        raise OptionError(f"--ema {decay}: give a decay in [0, 1), e.g. 0.998 (0 = off)")


def check_contrast_temp(temp: float) -> None:
    """The luma contrast term's temperature (``--grey-contrast-temp``): finite, >= 0.001 (the logits
    grow as 1 / temperature; far smaller ones overflow float32)."""
    if not 1e-3 <= temp < float("inf"):
        raise OptionError(f"--grey-contrast-temp {temp}: give a temperature of at least 0.001, e.g. 0.1")


def check_options(given: dict, *, resume: bool = False, init: bool = False) -> None:
    """Refuse what cannot run, before anything is loaded (``--lr 0`` is refused, never replaced)."""
    unknown = set(given) - {f.name for f in dataclasses.fields(TrainConfig)} - set(MODEL)
    if unknown:
        raise OptionError(f"unknown training options: {', '.join(sorted(unknown))}")
    if not resume and not given.get("data_pack") and not (given.get("content_dir") and given.get("style_dir")):
        raise OptionError("give --content DIR and --style DIR, --data-pack FILE, or --resume RUN_DIR")
    if resume and init:
        raise OptionError("--init starts a new run; --resume continues one: give one of them")
    if given.get("amp") is not None and given["amp"] not in AMP:
        raise OptionError(f"--amp {given['amp']}: use {', '.join(AMP[:-1])} or {AMP[-1]}")
    if given.get("compile") is not None and given["compile"] not in COMPILE:
        raise OptionError(f"--compile {given['compile']}: use {', '.join(COMPILE[:-1])} or {COMPILE[-1]}")
    if given.get("ema") is not None:
        check_ema(given["ema"])
    if given.get("grey_contrast_temp") is not None:
        check_contrast_temp(given["grey_contrast_temp"])
    for name, flag in (("distill_prob", "--distill-prob"),):
        v = given.get(name)
        if v is not None and not 0 <= v <= 1:
            raise OptionError(f"{flag} {v}: must be between 0 and 1")
    for name, flag in (("distill_weight", "--distill-weight"), ("distill_feature_weight", "--distill-features"),
                       ("grey_contrast_weight", "--grey-contrast-weight"),
                       ("dec_blocks", "--dec-blocks"), ("dec_fine_blocks", "--dec-fine-blocks")):
        if given.get(name) is not None and not (math.isfinite(given[name]) and given[name] >= 0):
            raise OptionError(f"{flag} {given[name]}: must be >= 0")
    tk = given.get("texture_kernel")
    if tk is not None and not texture_kernel_ok(tk):
        raise OptionError(f"--texture-kernel {tk}: give an odd size above 1, e.g. 3 (0 = none)")
    for name, flag in FLAGS.items():
        v = given.get(name)
        if v is not None and v <= 0:
            raise OptionError(f"{flag} {v}: must be > 0")
    if resume and any(given.get(k) is not None for k in MODEL):
        flags = "/".join("--" + k.replace("_", "-") for k in MODEL)
        raise OptionError(f"{flags} shape a new model; they cannot change on --resume")


def new_config(given: dict) -> TrainConfig:
    """A new run: TrainConfig's defaults with the options given (model options into its ModelConfig)."""
    given = {k: v for k, v in given.items() if v is not None}
    model = ModelConfig(**{k: given.pop(k) for k in MODEL if k in given})
    cfg = dataclasses.replace(TrainConfig(), model=model, **given)
    if cfg.flat_dir and "flat_prob" not in given:
        cfg.flat_prob = TrainConfig.FLAT_PROB_WITH_FLAT
    return cfg


def resume_config(saved: TrainConfig, call: TrainConfig, overrides: dict | None = None) -> TrainConfig:
    """The settings a resumed run goes on with: its ``saved`` config (its model, schedule and step
    count included), with this ``call``'s machine settings and data places (where the call names
    them), and the run settings in ``overrides`` from now on (e.g. larger crops on a GPU)."""
    cfg = dataclasses.replace(saved)
    for k in MACHINE:
        setattr(cfg, k, getattr(call, k))
    for k in PLACES:
        setattr(cfg, k, getattr(call, k) or getattr(saved, k))
    for k, v in (overrides or {}).items():
        setattr(cfg, k, v)
    return cfg


def source_model_options(source: str | Path) -> dict:
    """The model options (``MODEL``) that trained weights were built with: a run folder's
    train_config.json or a weights folder's config.json; {} where neither can be read (``--init``
    then reports the source itself)."""
    src = Path(source)
    for name in ("train_config.json", "config.json"):
        try:
            model = json.loads((src / name).read_text()).get("model", {})
        except (OSError, ValueError, AttributeError):
            continue
        return {k: model[k] for k in MODEL if isinstance(model, dict) and model.get(k) is not None}
    return {}


def call_config(given: dict, *, resume: bool = False, init: str | Path | None = None) -> tuple[TrainConfig, dict | None]:
    """From the options of one call: the TrainConfig to pass to ``train`` and, on ``resume``, the
    overrides (the run settings given, ``steps`` included) that ``resume_config`` applies. With
    ``init``, the model options not given are the source's (its deformable layers are kept)."""
    given = {k: v for k, v in given.items() if v is not None}
    check_options(given, resume=resume, init=init is not None)
    if not resume:
        if init is not None:
            given = {**source_model_options(init), **given}
        return new_config(given), None
    call = new_config({k: v for k, v in given.items() if k in MACHINE or k in PLACES})
    return call, {k: v for k, v in given.items() if k not in MACHINE and k not in PLACES}
