"""Configuration dataclasses. Saved as JSON next to the weights (no pickle)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

FORMAT_VERSION = 1
# Replicate-padded border around every image the network sees (inference and training crops);
# the zero-padding artefacts of the 1/8-resolution layers reach ~40 px in and stay in it.
PAD_MARGIN = 64
# BT.601 luma weights (they sum to 1, so adding grey to R, G and B shifts only the luma)
LUMA = (0.299, 0.587, 0.114)

# VGG-19 taps the style encoder exposes, and their mean activation on photos
# (from shared/models/README.md, unnormalised Caffe VGG at 512 px). Losses divide by
# these so the four layers weigh about the same.
VGG_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
# the grey taps: strokes and patterns without the palette (the grey distinctness, the luma contrast term)
GREY_TAPS = ("relu2_1", "relu3_1", "relu4_1")
VGG_TAP_SCALE = {"relu1_1": 24.0, "relu2_1": 124.0, "relu3_1": 119.0, "relu4_1": 449.0}
VGG_TAP_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}


@dataclass(frozen=True)
class StylizeConfig:
    """Defaults of the stylize options. The library calls take them as keyword defaults; the CLI's
    options default to "not given", show these, and pass only what was given."""

    strength: float = 1.0  # 0 = none, 1 = full, > 1 exaggerates
    palette: float = 1.0  # how far the output's colours move onto the painting's palette (0 = the network's)
    tone: float = 0.7  # how far the output's broad light and dark move to the photo's (0 = the network's)
    supersample: float = 1.0  # the network runs on the image enlarged this much, its output shrunk back (finer strokes)
    style_size: int = 256  # long side a style is encoded at: the scale the model was trained at
    feather: float = 4.0  # soft edge between mask regions, in pixels
    out: str = "stylized"  # output folder when --out is not given
    batch_size: int = 1  # same-size images per forward pass
    video_batch_size: int = 0  # frames per forward pass (0: automatic)
    stats: str = "sequence"  # video instance-norm statistics: sequence (smoothed over time) or frame
    momentum: float = 0.9  # of the smoothing over time
    crf: int = 18  # H.264 quality (0 lossless .. 51 worst)
    codec: str = "libx264"
    sheet_cell: int = 256  # long side of a sheet's cells, pixels
    sheet_max_size: int = 512  # long side the photo of a sheet is stylized at
    strip_steps: int = 5  # frames of an interpolation strip


STYLIZE = StylizeConfig()


@dataclass(frozen=True)
class ToolsConfig:
    """Defaults of the other commands' options (serve, bench, eval, export onnx, pack-data), shared
    by their library calls and the CLI in the same way."""

    host: str = "127.0.0.1"  # serve: this machine only
    port: int = 8000
    max_megapixels: float = 50.0  # serve: largest upload (the CLI reads up to 600 MP)
    bench_sizes: tuple[str, ...] = ("512x512", "1080p", "4K")
    bench_batch: int = 1
    bench_repeats: int = 5
    eval_size: int = 512  # long side contents are stylized at
    data_pack_size: int = 256  # square side a data pack keeps its images at
    opset: int = 18


TOOLS = ToolsConfig()


def texture_kernel_ok(k: int) -> bool:
    """A ``ModelConfig.texture_kernel`` that can be built: 0 (none) or an odd size above 1."""
    return k == 0 or (k > 1 and k % 2 == 1)


@dataclass
class ModelConfig:
    """Shape of the MobileNet-DIN network (content path + weight/bias nets)."""

    # Space-to-depth factor before the encoder (pixel unshuffle) and depth-to-space after the
    # decoder: 2 runs every conv at half resolution or less (1 = the paper's full-res layout).
    unshuffle: int = 2
    widths: tuple[int, int, int] = (32, 64, 128)  # the three DIN levels, finest first
    stem_kernel: int = 3  # the stride-1 input conv (paper/Johnson: 9x9)
    n_res: int = 2  # residual blocks in the encoder (and mirrored in the decoder)
    # Decoder output head. "bilinear": RGB and a few feature channels predicted at half resolution,
    # up-sampled bilinearly, then a 3x3 conv at full resolution refines them; it cannot print a
    # 2-pixel pattern the photo does not have. "shuffle": pixel shuffle of 12 channels (weights
    # before 0.2; its sub-pixel channels drift apart in training and leave 2-pixel stripes).
    head: str = "bilinear"
    head_channels: int = 8  # feature channels carried to full resolution by the bilinear head
    dec_blocks: int = 0  # extra residual blocks after each decoder up-step (1/4 and 1/2 resolution)
    # Blocks after the last up-step (1/2 resolution, the costliest place) where they differ from
    # ``dec_blocks``: 0 puts the extra capacity at 1/4 resolution only. None = ``dec_blocks``.
    dec_fine_blocks: int | None = None
    # One DIN layer per resolution, fed by these VGG taps of the style (full, 1/2, 1/4).
    style_taps: tuple[str, str, str] = ("relu2_1", "relu3_1", "relu4_1")
    param_hidden: int = 64  # width of the weight/bias nets
    kernel_size: int = 1  # dynamic kernel: depthwise k x k (1 = the paper's default)
    # Standard mode: besides the 1x1 weight, a depthwise k x k filter per channel predicted from
    # the style (its taps as channels of a small net), so a style can set the direction and grain
    # of the strokes, not only their contrast. 0 = none (weights before the option).
    texture_kernel: int = 0
    # Spatially-adaptive mode: the weight/bias maps keep the style's detail finer than this many
    # positions (coarser layout dropped) and are mirror-tiled over the content.
    adaptive_window: int = 9
    deform_kernel: int = 0  # k of the deformable mode's k x k kernel (0 = no deformable layers)
    eps: float = 1e-5

    def __post_init__(self):
        t = self.texture_kernel
        if not texture_kernel_ok(t):
            raise ValueError(f"texture_kernel {t}: an odd size above 1, or 0")
        if t and self.kernel_size > 1:
            raise ValueError("texture_kernel adds to the 1x1 weight: it needs kernel_size 1")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["dec_fine_blocks"] is None:  # the default layout: weights stay readable by releases before the option
            del d["dec_fine_blocks"]
        if not d["texture_kernel"]:  # likewise
            del d["texture_kernel"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d.pop("adaptive_grid", None)  # the 8x8 kernel grid of earlier weights; replaced by adaptive_window
        d.setdefault("head", "shuffle")  # configs written before the head was configurable
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        for k in ("widths", "style_taps"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass
class TrainConfig:
    content_dir: str = ""
    style_dir: str = ""
    data_pack: str | None = None  # a `dinstyle pack-data` file holding content/style/flat images instead of folders
    vgg: str | None = None
    steps: int = 160_000
    batch_size: int = 8
    crop: int = 256
    lr: float = 1e-4
    param_lr_mult: float = 10.0
    lr_decay: float = 5e-5  # lr / (1 + decay * step), as AdaIN/MicroAST
    warmup: int = 0  # steps of linear learning-rate warm-up (after a change of batch size or lr)
    content_weight: float = 1.0
    style_weight: float = 20.0  # 2 gave a colour filter; 20 gives the painting's texture (A/B in the model card)
    # scales each VGG tap's style term (relu1_1 .. relu4_1), after the per-layer balance
    style_layer_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    # Weight of the colour term: sliced Wasserstein distance of the output's RGB colours to the
    # style image's (losses.color_loss); 0 = off. The VGG mean/std loss alone lets palettes drift.
    color_weight: float = 0.0
    # Weight of the share-free palette term (losses.palette_loss): the output's colours near the
    # painting's and each of the painting's colours somewhere in the output, in any shares; 0 = off.
    palette_weight: float = 0.0
    # Weight of the luma style term (train.luma): the style loss on the output's and the painting's
    # grey levels, the strokes and patterns the palette transfer leaves to the network; 0 = off.
    grey_style_weight: float = 0.0
    # Weight of the luma contrast term (train.luma): each output's grey statistics nearest to its own
    # painting's among the batch's paintings (cross-entropy at this temperature); 0 = off.
    grey_contrast_weight: float = 0.0
    grey_contrast_temp: float = 0.1
    # Distillation: folders of a teacher's stylizations (each with manifest.csv: target,content,style).
    # On a share ``distill_prob`` of the steps the batch is drawn from their pairs and the output is
    # also compared with the teacher's: pixels and differences (train.distill.distill_loss, weight
    # ``distill_weight``) and VGG maps (feature_distill_loss, weight ``distill_feature_weight``).
    targets: tuple[str, ...] = ()
    distill_weight: float = 1.0
    distill_feature_weight: float = 0.0
    distill_prob: float = 1.0
    # Exponential moving average of the weights (train.ema), kept beside them and exported; 0 = off.
    ema: float = 0.0
    bank_size: int = 256  # every training image is decoded once to this square size
    # Content crops are replicate-padded by this many pixels before the network and the output
    # cropped back, as the engine does at inference (PAD_MARGIN): the losses never see the reach
    # of the network's zero-padded borders, so it cannot lower the style loss by painting frames
    # there. That reach is ~40 px (measured: a model trained at 24 px paints a frame 24 px in).
    pad: int = PAD_MARGIN
    # output pixels per source pixel of content crops (drawn log-evenly): > 1 zooms in, the way a
    # large photo looks to the network at inference
    content_zoom: tuple[float, float] = (1.0, 2.0)
    # styles are seen whole at this size, as at inference (0: random crops at style_zoom instead)
    style_view: int = 256
    style_zoom: tuple[float, float] = (0.5, 1.0)
    # draw styles in proportion to (texture energy / median) ** this (0: uniformly); see data.style_probabilities
    style_texture_power: float = 2.0
    style_cache: bool = True  # keep each style's VGG taps after its first use (whole-view styles only)
    style_cache_dir: str | None = None  # CPU: folder the cache file is kept in (default: the run folder)
    adaptive_prob: float = 0.0  # share of steps trained in the spatially-adaptive mode
    deformable_prob: float = 0.0  # share of steps trained in the deformable mode (needs model.deform_kernel)
    flat_dir: str | None = None  # optional flat-colour images mixed into the content stream
    flat_prob: float = 0.0
    FLAT_PROB_WITH_FLAT: ClassVar[float] = 0.1  # a new run's flat_prob when flat_dir is given and flat_prob is not
    adaptive_flat_prob: float | None = None  # share of flat images in adaptive-mode steps (None: flat_prob)
    seed: int = 0
    workers: int = 2  # threads decoding the images into memory at start-up
    checkpoint_every: int = 500
    preview_every: int = 500
    log_every: int = 10
    device: str = "auto"
    amp: str = "auto"  # auto (bf16 on GPUs and on CPUs with bf16 units) | bf16 | fp16 | none
    compile: str = "auto"  # torch.compile the model: auto (tried on CUDA, kept if faster) | on | off
    model: ModelConfig = field(default_factory=ModelConfig)

    @property
    def uses_grey(self) -> bool:
        """Whether a luma term (style or contrast) runs: the paintings' grey statistics are needed."""
        return bool(self.grey_style_weight or self.grey_contrast_weight)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        model = ModelConfig.from_dict(d.pop("model", {}))
        # settings a run saved before they existed keep the behaviour it was trained with
        for k, v in (("pad", 0), ("style_view", 0), ("style_texture_power", 0.0), ("content_zoom", (0.5, 1.0))):
            d.setdefault(k, v)
        names = {f.name for f in dataclasses.fields(cls)}
        for k in ("style_layer_weights", "content_zoom", "style_zoom", "targets"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(model=model, **{k: v for k, v in d.items() if k in names})

