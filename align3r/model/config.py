"""The network's configuration: one frozen dataclass with the official constructor's field names.

``Align3RConfig`` describes every network of the DUSt3R family we load: Align3R (with the depth
prior branch), DUSt3R and MonST3R (without it). Field names follow the official
``AsymmetricCroCo3DStereo(...)`` keywords so official strings and Hub ``config.json`` files map
onto it one to one (see ``official_args.py``); ``with_prior`` is ours, because the official
constructor string of Align3R is identical to DUSt3R's and only the state dict tells them apart.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from align3r.errors import InputError, check_known_fields

INF = math.inf

DEPTH_MODES = ("exp", "square", "linear")
CONF_MODES = ("exp", "sigmoid")
PATCH_EMBED_CLASSES = ("PatchEmbedDust3R", "ManyAR_PatchEmbed")
FREEZE_MODES = ("none", "mask", "encoder")
_ROPE_NAME = re.compile(r"^RoPE(\d+(?:\.\d*)?)$")


@dataclass(frozen=True)
class Align3RConfig:
    """Hyper-parameters of an Align3R / DUSt3R / MonST3R network.

    Defaults are the released full-size Align3R network (ViT-L encoder, ViT-B decoder, DPT heads,
    prior branch), i.e. the official train.sh string with the inference-time patch embedding.

    - ``enc_embed_dim``/``enc_depth``/``enc_num_heads``: image encoder width, blocks, heads.
    - ``dec_embed_dim``/``dec_depth``/``dec_num_heads``: decoder width, blocks (per view), heads.
    - ``head_type``: ``"dpt"`` or ``"linear"``; ``output_mode`` must be ``"pts3d"``.
    - ``depth_mode``: (mode, vmin, vmax) of the point-map activation (``exp``: ``x/|x|·expm1|x|``).
    - ``conf_mode``: (mode, vmin, vmax) of the confidence (``exp``: ``vmin + exp(c)``).
    - ``patch_size`` (px), ``mlp_ratio``, ``img_size`` (H, W the network was built for; inputs of
      any multiple of ``patch_size`` run), ``pos_embed`` (``"RoPE<base>"``).
    - ``patch_embed_cls``: ``"PatchEmbedDust3R"`` (inference: any orientation) or
      ``"ManyAR_PatchEmbed"`` (training: landscape batches holding transposed portrait samples).
    - ``landscape_only``: training-time head orientation logic (official ``dust3r/utils/misc.py``,
      ``transpose_to_landscape``).
    - ``norm_im2_in_dec``: LayerNorm on the cross-attention memory (``norm_y``).
    - ``freeze``: ``"none"``, ``"mask"`` or ``"encoder"`` (parameters left without gradient).
    - ``with_prior``: build the depth-prior branch (Align3R); False for DUSt3R / MonST3R.
    """

    enc_embed_dim: int = 1024
    enc_depth: int = 24
    enc_num_heads: int = 16
    dec_embed_dim: int = 768
    dec_depth: int = 12
    dec_num_heads: int = 12
    head_type: str = "dpt"
    output_mode: str = "pts3d"
    depth_mode: tuple[str, float, float] = ("exp", -INF, INF)
    conf_mode: tuple[str, float, float] = ("exp", 1.0, INF)
    patch_size: int = 16
    mlp_ratio: float = 4.0
    img_size: tuple[int, int] = (512, 512)
    pos_embed: str = "RoPE100"
    patch_embed_cls: str = "PatchEmbedDust3R"
    landscape_only: bool = False
    norm_im2_in_dec: bool = True
    freeze: str = "none"
    with_prior: bool = True

    def __post_init__(self) -> None:
        # Normalise JSON-ish values (lists, ints) so configs from files compare equal to presets.
        object.__setattr__(self, "depth_mode", _mode_tuple(self.depth_mode, "depth_mode"))
        object.__setattr__(self, "conf_mode", _mode_tuple(self.conf_mode, "conf_mode"))
        img = self.img_size
        img = (img, img) if isinstance(img, int) else tuple(int(v) for v in img)
        object.__setattr__(self, "img_size", img)
        object.__setattr__(self, "mlp_ratio", float(self.mlp_ratio))
        self._validate()

    def _validate(self) -> None:
        problems = []
        for name in ("enc", "dec"):
            dim, heads = getattr(self, f"{name}_embed_dim"), getattr(self, f"{name}_num_heads")
            if dim <= 0 or heads <= 0 or dim % heads:
                problems.append(f"{name}_embed_dim={dim} must be a positive multiple of {name}_num_heads={heads}")
            elif (dim // heads) % 4:
                problems.append(f"{name} head dim {dim // heads} must be a multiple of 4 (2-D RoPE)")
        if self.enc_depth < 1:
            problems.append(f"enc_depth={self.enc_depth} must be >= 1")
        if self.head_type not in ("dpt", "linear"):
            problems.append(f"head_type={self.head_type!r} must be 'dpt' or 'linear'")
        if self.head_type == "dpt" and self.patch_size != 16:
            problems.append(f"the DPT head's fixed up-sampling needs patch_size=16, got {self.patch_size}")
        min_dec = 4 if (self.head_type == "dpt" or self.with_prior) else 1
        if self.dec_depth < min_dec:
            problems.append(f"dec_depth={self.dec_depth} must be >= {min_dec} for this head / prior branch")
        if self.output_mode != "pts3d":
            problems.append(f"output_mode={self.output_mode!r}: only 'pts3d' is supported")
        if self.depth_mode[0] not in DEPTH_MODES or self.depth_mode[1:] != (-INF, INF):
            problems.append(f"depth_mode={self.depth_mode!r} must be (one of {DEPTH_MODES}, -inf, inf)")
        if self.conf_mode[0] not in CONF_MODES:
            problems.append(f"conf_mode={self.conf_mode!r} must use one of {CONF_MODES}")
        if _ROPE_NAME.match(self.pos_embed) is None:
            problems.append(f"pos_embed={self.pos_embed!r}: only 'RoPE<base>' (e.g. 'RoPE100') is supported")
        if self.patch_embed_cls not in PATCH_EMBED_CLASSES:
            problems.append(f"patch_embed_cls={self.patch_embed_cls!r} must be one of {PATCH_EMBED_CLASSES}")
        if self.freeze not in FREEZE_MODES:
            problems.append(f"freeze={self.freeze!r} must be one of {FREEZE_MODES}")
        if self.patch_size < 1 or any(s % self.patch_size for s in self.img_size):
            problems.append(f"img_size={self.img_size} must be a multiple of patch_size={self.patch_size}")
        if problems:
            raise InputError("invalid network configuration: " + "; ".join(problems))

    # --- derived quantities -------------------------------------------------------------------
    @property
    def rope_base(self) -> float:
        """Frequency base of the 2-D RoPE (100 for ``"RoPE100"``)."""
        return float(_ROPE_NAME.match(self.pos_embed).group(1))

    @property
    def num_prior_blocks(self) -> int:
        """Self-attention blocks of the prior branch: ``dec_depth // 2 - 2`` (0 without prior)."""
        return self.dec_depth // 2 - 2 if self.with_prior else 0

    @property
    def dpt_hooks(self) -> tuple[int, int, int, int]:
        """Indices into the decoder output list read by the DPT head: ``[0, L/2, 3L/4, L]``."""
        depth = self.dec_depth
        return (0, depth * 2 // 4, depth * 3 // 4, depth)

    @property
    def training_orientation(self) -> bool:
        """True when the ManyAR patch embedding / landscape-only heads are active."""
        return self.landscape_only or self.patch_embed_cls == "ManyAR_PatchEmbed"

    # --- conversion ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists, infinities as floats: ``json`` writes ``Infinity``)."""
        out = asdict(self)
        for key in ("depth_mode", "conf_mode", "img_size"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Align3RConfig:
        """Inverse of ``to_dict``; unknown keys raise ``InputError`` naming them."""
        check_known_fields(cls, values, "network configuration keys")
        return cls(**values)

    def replace(self, **changes: Any) -> Align3RConfig:
        return replace(self, **changes)

    def for_inference(self) -> Align3RConfig:
        """The same network with the inference-time patch embedding and head orientation.

        This is what the official ``load_model`` does to every checkpoint string.
        """
        return replace(self, patch_embed_cls="PatchEmbedDust3R", landscape_only=False)

    def for_training(self) -> Align3RConfig:
        """The same network with the training-time ManyAR embedding and landscape-only heads."""
        return replace(self, patch_embed_cls="ManyAR_PatchEmbed", landscape_only=True)


def _mode_tuple(value: Any, name: str) -> tuple[str, float, float]:
    if isinstance(value, (list, tuple)) and len(value) == 3 and isinstance(value[0], str):
        try:
            return (value[0], float(value[1]), float(value[2]))
        except (TypeError, ValueError):
            pass
    raise InputError(f"{name} must be a (mode, vmin, vmax) triple, got {value!r}")


# --- named presets ------------------------------------------------------------------------------
ALIGN3R_512_DPT = Align3RConfig()
DUST3R_512_DPT = Align3RConfig(with_prior=False)
DUST3R_224_LINEAR = Align3RConfig(img_size=(224, 224), head_type="linear", with_prior=False)
# The three tiny networks of the golden fixtures (``shared/fixtures/model``).
TINY_A = Align3RConfig(enc_embed_dim=128, enc_depth=2, enc_num_heads=2, dec_embed_dim=96, dec_depth=10,
                       dec_num_heads=2)
TINY_B = Align3RConfig(img_size=(224, 224), enc_embed_dim=96, enc_depth=3, enc_num_heads=4, dec_embed_dim=64,
                       dec_depth=12, dec_num_heads=4)
TINY_DUST3R_LINEAR = Align3RConfig(img_size=(224, 224), head_type="linear", enc_embed_dim=64, enc_depth=2,
                                   enc_num_heads=2, dec_embed_dim=64, dec_depth=4, dec_num_heads=2,
                                   with_prior=False)
# Smallest useful Align3R (smoke tests, benchmark dry runs). The DPT head keeps its fixed
# official widths (~22.5 M parameters per head) whatever the transformer size.
TINY = Align3RConfig(enc_embed_dim=64, enc_depth=2, enc_num_heads=2, dec_embed_dim=64, dec_depth=4,
                     dec_num_heads=2)

PRESETS: dict[str, Align3RConfig] = {
    "align3r-512-dpt": ALIGN3R_512_DPT,
    "dust3r-512-dpt": DUST3R_512_DPT,
    "monst3r-512-dpt": DUST3R_512_DPT,
    "dust3r-224-linear": DUST3R_224_LINEAR,
    "tiny": TINY,
    "tiny-a": TINY_A,
    "tiny-b": TINY_B,
    "tiny-dust3r-linear": TINY_DUST3R_LINEAR,
}


def preset(name: str) -> Align3RConfig:
    """The named configuration; unknown names raise ``InputError`` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown network preset {name!r}; choose one of {sorted(PRESETS)}") from None


def describe(config: Align3RConfig) -> str:
    """One line naming the architecture, for error messages and listings."""
    family = "Align3R" if config.with_prior else "DUSt3R/MonST3R"
    return (f"{family} network (encoder {config.enc_embed_dim}x{config.enc_depth}, decoder "
            f"{config.dec_embed_dim}x{config.dec_depth}, {config.head_type} head)")
