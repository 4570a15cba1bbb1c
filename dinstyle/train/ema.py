"""An exponential moving average of the model's weights (``--ema DECAY``).

At batch 8 on a CPU the weights swing from step to step: two checkpoints of one run, a few hundred
steps apart, differ by more on the dev set than most recipe changes do. The average of the recent
weights sits in the middle of that swing: after every step each averaged tensor moves a share
``1 - decay`` of the way to the trained one (decay 0.998: about the last 500 steps count). The
average starts from the run's starting weights, is kept in the checkpoint beside the trained
weights, and is what ``export-weights`` writes where a run has one (``--raw`` writes the trained
weights instead). Integer buffers are copied, not averaged.
"""
from __future__ import annotations

import torch
from torch import nn

from dinstyle.errors import CheckpointError


class WeightAverage:
    """The averaged copy of ``model``'s state (float32, on the model's device, in its memory format)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 <= decay < 1:
            raise ValueError(f"weight-average decay {decay}: must be in [0, 1)")
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() if v.is_floating_point() else v.detach().clone()
                       for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        live = model.state_dict()
        avg, new = [], []
        for k, v in self.shadow.items():
            if v.is_floating_point():
                avg.append(v)
                new.append(live[k].detach().float())
            else:
                v.copy_(live[k])
        torch._foreach_lerp_(avg, new, 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != set(self.shadow) or any(v.shape != self.shadow[k].shape for k, v in state.items()):
            raise CheckpointError("the checkpoint's weight average does not match the model")
        for k, v in state.items():
            self.shadow[k].copy_(v)
