"""ONNX export of the content path, with a parity check in onnxruntime.

The exported graph takes ``image`` (N, 3, H, W) float RGB in [0, 1], H and W multiples of the
network's stride (8), and returns the stylized image. The style is either baked in from a pack or
image (``--style``), or left as inputs: one ``din{i}_weight`` / ``din{i}_bias`` pair per DIN layer,
exactly the tensors a style pack stores.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from dinstyle.config import TOOLS
from dinstyle.engine import Stylizer
from dinstyle.styles import Style
from dinstyle.errors import DinstyleError, OptionError
from dinstyle.io.files import atomic_path
from dinstyle.model import DinParams


class _Baked(nn.Module):
    def __init__(self, model, params):
        super().__init__()
        self.model = model
        for i, p in enumerate(params):
            self.register_buffer(f"w{i}", p["weight"].detach().clone())
            self.register_buffer(f"b{i}", p["bias"].detach().clone())
        self.n = len(params)

    def forward(self, image: Tensor) -> Tensor:
        params = [{k: t.expand(image.shape[0], *t.shape[1:]) for k, t in (("weight", getattr(self, f"w{i}")),
                                                                           ("bias", getattr(self, f"b{i}")))}
                  for i in range(self.n)]
        return self.model(image, DinParams("standard", params)).clamp(0, 1)


class _Open(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image: Tensor, *flat: Tensor) -> Tensor:
        params = [{"weight": flat[2 * i], "bias": flat[2 * i + 1]} for i in range(len(flat) // 2)]
        return self.model(image, DinParams("standard", params)).clamp(0, 1)


def export_onnx(st: Stylizer, dest: str | Path, style: Style | None = None, opset: int = TOOLS.opset,
                check: bool = True) -> dict:
    """Write the ONNX file and (by default) check it against PyTorch in onnxruntime (the model runs
    on the CPU in float32 meanwhile, and is put back after)."""
    if style is not None and style.mode != "standard":
        raise OptionError("ONNX export supports --mode standard")
    with st.on_device("cpu") as model:
        return _export(st, model, Path(dest), style, opset, check)


def _export(st: Stylizer, model: nn.Module, dest: Path, style: Style | None, opset: int, check: bool) -> dict:
    m = model.multiple
    h, w = 4 * m, 6 * m
    image = torch.rand(1, 3, h, w)
    dyn = {0: "batch", 2: "height", 3: "width"}
    if style is not None:
        wrapper: nn.Module = _Baked(model, [{k: v.cpu() for k, v in p.items()} for p in style.params])
        args: tuple = (image,)
        names = ["image"]
        axes = {"image": dyn, "stylized": dyn}
    else:
        probe = st.expected_params("standard")
        flat = [torch.rand(1, *p[k].shape[1:]) + 0.5 for p in probe for k in ("weight", "bias")]
        wrapper, args = _Open(model), (image, *flat)
        names = ["image"] + [f"din{i}_{k}" for i in range(len(probe)) for k in ("weight", "bias")]
        axes = {"image": dyn, "stylized": dyn, **{n: {0: "batch"} for n in names[1:]}}
    with atomic_path(dest, suffix=".onnx") as tmp:
        try:
            torch.onnx.export(wrapper, args, str(tmp), input_names=names, output_names=["stylized"],
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
        except Exception as e:  # exporter failures are not the user's input: report them in one line
            raise DinstyleError(f"ONNX export failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}") from None
    result = {"output": str(dest), "inputs": names, "baked_style": style is not None, "bytes": dest.stat().st_size}
    if check:
        result.update(check_parity(dest, wrapper, args))
    return result


def check_parity(path: str | Path, wrapper: nn.Module, args: tuple, size: tuple[int, int] = (72, 104)) -> dict:
    """Run the ONNX file in onnxruntime at a size other than the export size; compare with PyTorch."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = torch.rand(2, 3, *size)
    rest = [a.expand(2, *a.shape[1:]).contiguous() for a in args[1:]]
    with torch.inference_mode():
        ref = wrapper(image, *rest).numpy()
    feeds = {i.name: t.numpy() for i, t in zip(sess.get_inputs(), [image, *rest])}
    out = sess.run(None, feeds)[0]
    err = float(np.abs(out - ref).max())
    if err > 1e-3:
        raise DinstyleError(f"{path}: onnxruntime output differs from PyTorch by {err:.2e}")
    return {"parity_max_abs_error": err}


def time_onnx(path: str | Path, h: int, w: int, repeats: int = 5) -> float:
    """Median seconds of one (1, 3, h, w) run in onnxruntime (baked-style graphs)."""
    import statistics

    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.rand(1, 3, h, w).astype(np.float32)
    name = sess.get_inputs()[0].name
    sess.run(None, {name: x})
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)
