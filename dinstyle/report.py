"""What `dinstyle info` reports: model, weights, cost, device, and a style pack's contents (as data;
the CLI renders it)."""
from __future__ import annotations

import platform
from pathlib import Path

import torch


def describe(weights: str | Path | None = None, device: str = "auto", pack: str | Path | None = None) -> dict:
    from dinstyle.engine import Stylizer
    from dinstyle.model import KINDS
    from dinstyle.model.vgg import PARAMETERS as VGG19_TO_RELU4_1_PARAMS

    st = Stylizer(weights=weights, device=device)
    m = st.model
    counts = st.parameter_counts()
    content, nets = counts["content_path"], counts["weight_bias_nets"]
    macs = st.content_macs("standard", 512, 512)
    data = {
        "model": "MobileNet-DIN",
        "model_id": st.model_id,
        "weights": st.info.get("path"),
        "trained": st.trained,
        "training": st.info.get("trained") or None,
        "config": m.cfg.to_dict(),
        "modes": [name for name in KINDS if m.missing(name) is None],
        "parameters": {"content_path": content, "weight_bias_nets": nets,
                       "style_encoder_vgg19": VGG19_TO_RELU4_1_PARAMS, "total": content + nets + VGG19_TO_RELU4_1_PARAMS},
        "macs_512": macs,
        "device": str(st.device),
        "dtype": str(st.dtype).replace("torch.", ""),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }
    if pack is not None:
        from dinstyle.packs import check_pack, load_pack

        pk = load_pack(pack)
        try:
            check_pack(pk, pack, st.model_id, st.expected_params(pk.mode))
            compatible, why = True, ""
        except Exception as e:  # report, do not fail
            compatible, why = False, str(e)
        data["pack"] = {"path": str(pack), "source": pk.source, "mode": pk.mode, "style_size": pk.style_size,
                        "model_id": pk.model_id, "compatible": compatible, "problem": why or None,
                        "layers": [{k: list(v.shape) for k, v in p.items()} for p in pk.params],
                        "values": sum(v.numel() for p in pk.params for v in p.values()),
                        "palette_pixels": 0 if pk.palette is None else len(pk.palette)}
    return data

