"""dinstyle: fast arbitrary style transfer with Dynamic Instance Normalization (MobileNet-DIN).

Library use::

    from dinstyle import Stylizer
    st = Stylizer()
    style = st.load_style(["painting.jpg"])
    out = st.stylize_file("photo.jpg", style)   # (H, W, 3) uint8
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Stylizer", "StylePack", "load_model", "__version__"]


def __getattr__(name: str):  # lazy: importing dinstyle does not import torch
    if name == "Stylizer":
        from dinstyle.engine import Stylizer

        return Stylizer
    if name == "StylePack":
        from dinstyle.packs import StylePack

        return StylePack
    if name == "load_model":
        from dinstyle.checkpoint import load_model

        return load_model
    raise AttributeError(name)
