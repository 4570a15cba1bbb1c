"""What `dinstyle info` reports: model, weights, cost, device, and a style pack's contents."""
from __future__ import annotations

import platform
from pathlib import Path

import torch


def describe(weights: str | Path | None = None, device: str = "auto", pack: str | Path | None = None) -> dict:
    from dinstyle.engine import Stylizer
    from dinstyle.model.macs import content_path_macs

    st = Stylizer(weights=weights, device=device)
    m = st.model
    content = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("dins.") or "offset_net" in n)
    nets = sum(p.numel() for n, p in m.named_parameters() if n.startswith("dins.") and "offset_net" not in n)
    macs = content_path_macs(m.cpu(), 512, 512)
    m.to(st.device)
    data = {
        "model": "MobileNet-DIN",
        "model_id": st.model_id,
        "weights": st.info.get("path"),
        "trained": st.trained,
        "training": st.info.get("trained") or None,
        "config": m.cfg.to_dict(),
        "modes": ["standard", "adaptive"] + (["deformable"] if m.cfg.deform_kernel else []),
        "parameters": {"content_path": content, "weight_bias_nets": nets,
                       "style_encoder_vgg19": 3_505_728, "total": content + nets + 3_505_728},
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
            check_pack(pk, pack, st.model_id, st._expected_shapes(pk.mode))
            compatible, why = True, ""
        except Exception as e:  # report, do not fail
            compatible, why = False, str(e)
        data["pack"] = {"path": str(pack), "source": pk.source, "mode": pk.mode, "style_size": pk.style_size,
                        "model_id": pk.model_id, "compatible": compatible, "problem": why or None,
                        "layers": [{k: list(v.shape) for k, v in p.items()} for p in pk.params],
                        "values": sum(v.numel() for p in pk.params for v in p.values())}
    return data


def render_info(d: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    state = "[green]trained[/green]" if d["trained"] else "[red]UNTRAINED (outputs are not a real stylization)[/red]"
    t.add_row("model", f"{d['model']}  id {d['model_id']}  {state}")
    t.add_row("weights", escape(str(d["weights"])))
    t.add_row("modes", ", ".join(d["modes"]) + " (and auto for images)")
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
                          f"model {pk['model_id']}, {pk['values']} values in {len(pk['layers'])} layers; {ok}")
    console.print(t)
