"""The Align3R / DUSt3R / MonST3R network: siamese ViT encoder, two cross-attending decoders,
optional depth-prior branch, one head per view.

The forward pass is split at the point where the two views meet, so batched inference can
**encode each frame once** and decode every edge it belongs to:

- ``encode_frames(img, true_shape, prior_pts3d) -> FrameFeatures``: everything that depends on
  one frame only: the image encoder, the decoder input projection and the prior branch.
- ``decode_pairs(frames1, frames2) -> (res1, res2)``: the two decoders (each view attends to the
  other) and the heads.

``forward(view1, view2)`` composes the two with the DUSt3R-family interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from align3r.errors import InputError
from align3r.model.blocks import DecoderBlock, EncoderBlock, layer_norm
from align3r.model.build import load_network
from align3r.model.checkpoints.write import save_pretrained
from align3r.model.config import Align3RConfig
from align3r.model.dpt_head import DPTHead
from align3r.model.linear_head import LinearHead
from align3r.model.patch_embed import ManyARPatchEmbed, PatchEmbed, portrait_rows
from align3r.model.postprocess import postprocess
from align3r.model.prior_branch import build_prior_branch, prior_injections
from align3r.model.rope import RoPE2D, RotaryTables, attention_dtype

PRIOR_KEYS = ("prior_pts3d", "pred_depth")  # ours, then the official (misleading) name


@dataclass
class FrameFeatures:
    """Per-frame network state, independent of the frame's partner in a pair.

    B frames (or views), N tokens each, in raster order of each sample's true orientation:

    - ``tokens``: (B, N, enc_embed_dim) encoder output after ``enc_norm`` (decoder list entry 0).
    - ``pos``: (B, N, 2) int64 token (row, col).
    - ``dec_input``: (B, N, dec_embed_dim) ``decoder_embed(tokens)`` plus the first prior
      injection: what decoder layer 0 reads.
    - ``injections``: (P, B, N, dec_embed_dim) prior injections added after decoder layers
      0..P-1 (P = ``config.num_prior_blocks``); ``None`` for a network without prior branch.
    - ``true_shape``: (B, 2) int64 (height, width) of each sample.
    - ``image_hw``: (H, W) of the image tensor the frames came from (pixels).
    """

    tokens: Tensor
    pos: Tensor
    dec_input: Tensor
    injections: Tensor | None
    true_shape: Tensor
    image_hw: tuple[int, int]

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def __getitem__(self, index: Tensor | slice | Sequence[int]) -> FrameFeatures:
        """The frames selected along the batch axis (e.g. ``frames[edges[:, 0]]``)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        if not isinstance(index, slice):
            index = torch.as_tensor(index, dtype=torch.long, device=self.tokens.device)
        return FrameFeatures(
            tokens=self.tokens[index], pos=self.pos[index], dec_input=self.dec_input[index],
            injections=None if self.injections is None else self.injections[:, index],
            true_shape=self.true_shape[index], image_hw=self.image_hw,
        )

    @staticmethod
    def cat(parts: Sequence[FrameFeatures]) -> FrameFeatures:
        """Concatenate along the batch axis (all parts from the same image size)."""
        if len({p.image_hw for p in parts}) != 1:
            raise InputError(f"cannot concatenate frames of different sizes {[p.image_hw for p in parts]}")
        has_prior = {p.injections is None for p in parts}
        if len(has_prior) != 1:
            raise InputError("cannot concatenate frames with and without prior injections")
        return FrameFeatures(
            tokens=torch.cat([p.tokens for p in parts]), pos=torch.cat([p.pos for p in parts]),
            dec_input=torch.cat([p.dec_input for p in parts]),
            injections=None if parts[0].injections is None else torch.cat([p.injections for p in parts], dim=1),
            true_shape=torch.cat([p.true_shape for p in parts]), image_hw=parts[0].image_hw,
        )

    def split(self, size: int) -> tuple[FrameFeatures, FrameFeatures]:
        """The first ``size`` frames and the rest."""
        return self[slice(0, size)], self[slice(size, None)]

    def to(self, device: torch.device | str) -> FrameFeatures:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return FrameFeatures(**{k: v.to(device) if isinstance(v, Tensor) else v for k, v in values.items()})


def _interleave(a: FrameFeatures, b: FrameFeatures) -> FrameFeatures:
    """[a0, b0, a1, b1, ...] along the batch axis (training batches hold each pair and its swap)."""
    n = len(a)
    order = torch.stack((torch.arange(n), torch.arange(n) + n), dim=1).flatten()
    return FrameFeatures.cat([a, b])[order]


class Align3RNet(nn.Module):
    """A DUSt3R-family pair network; Align3R when ``config.with_prior``.

    Attribute names (hence state-dict keys) are the official ones. Disabled parts are ``None``:
    ``patch_embed_point_cloud``, ``dec_blocks_pc`` and ``zero_convs`` without the prior branch.
    Build it from a config (``Align3RNet(preset("tiny"))``) or load weights with
    ``align3r.load_model`` (or ``Align3RNet.from_pretrained``).
    """

    def __init__(self, config: Align3RConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or Align3RConfig()
        enc, dec, p = config.enc_embed_dim, config.dec_embed_dim, config.patch_size
        self.rope = RoPE2D(config.rope_base)
        embed_cls = ManyARPatchEmbed if config.patch_embed_cls == "ManyAR_PatchEmbed" else PatchEmbed

        self.patch_embed = embed_cls(p, 3, enc)
        self.enc_blocks = nn.ModuleList(
            EncoderBlock(enc, config.enc_num_heads, config.mlp_ratio) for _ in range(config.enc_depth))
        self.enc_norm = layer_norm(enc)
        # Unused: CroCo's pretraining mask token, kept so official state dicts round-trip.
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec))
        self.decoder_embed = nn.Linear(enc, dec)
        self.dec_blocks = self._decoder_blocks()
        self.dec_blocks2 = self._decoder_blocks()
        self.dec_norm = layer_norm(dec)

        self.patch_embed_point_cloud: PatchEmbed | None = None
        self.dec_blocks_pc: nn.ModuleList | None = None
        self.zero_convs: nn.ModuleList | None = None
        if config.with_prior:
            self.patch_embed_point_cloud, self.dec_blocks_pc, self.zero_convs = build_prior_branch(
                embed_cls, p, dec, config.dec_num_heads, config.num_prior_blocks, config.mlp_ratio)

        self.downstream_head1 = self._head()
        self.downstream_head2 = self._head()
        self.init_weights()
        self._freeze(config.freeze)

    def _decoder_blocks(self) -> nn.ModuleList:
        c = self.config
        return nn.ModuleList(
            DecoderBlock(c.dec_embed_dim, c.dec_num_heads, c.mlp_ratio, c.norm_im2_in_dec)
            for _ in range(c.dec_depth))

    def _head(self) -> nn.Module:
        c = self.config
        if c.head_type == "dpt":
            return DPTHead(c.enc_embed_dim, c.dec_embed_dim, c.dpt_hooks, c.patch_size)
        return LinearHead(c.dec_embed_dim, c.patch_size)

    # --- initialisation -----------------------------------------------------------------------
    @torch.no_grad()
    def init_weights(self) -> None:
        """The official initialisation (matters for training from a partial checkpoint only).

        Image patch projection xavier-uniform (flattened); every Linear of the transformer
        xavier-uniform with zero bias; LayerNorms 1/0; mask token N(0, 0.02); ``dec_blocks2`` a
        copy of ``dec_blocks``; the prior patch projection and the heads keep PyTorch's default
        init; prior injections zero (set by ``PriorInjection``).
        """
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.mask_token, std=0.02)
        trunk = [self.enc_blocks, self.enc_norm, self.decoder_embed, self.dec_blocks, self.dec_norm]
        if self.dec_blocks_pc is not None:
            trunk.append(self.dec_blocks_pc)
        for module in trunk:
            module.apply(_init_transformer_weights)
        self.dec_blocks2.load_state_dict(self.dec_blocks.state_dict())

    def _freeze(self, mode: str) -> None:
        frozen = {"none": [], "mask": [self.mask_token], "encoder": [self.mask_token, self.patch_embed,
                                                                    self.enc_blocks]}[mode]
        for item in frozen:
            item.requires_grad_(False)

    # --- dtype --------------------------------------------------------------------------------
    @property
    def trunk_dtype(self) -> torch.dtype:
        """Parameter dtype of the transformer (inputs are cast to it)."""
        return self.patch_embed.proj.weight.dtype

    def set_trunk_dtype(self, dtype: torch.dtype) -> Align3RNet:
        """Store the transformer in ``dtype`` (e.g. bf16 to halve memory); heads stay float32."""
        for name, child in self.named_children():
            if not name.startswith("downstream_head"):
                child.to(dtype)
        self.mask_token.data = self.mask_token.data.to(dtype)
        return self

    # --- per-frame half -----------------------------------------------------------------------
    def encode_images(self, img: Tensor, true_shape: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Image encoder: (B, 3, H, W) in [-1, 1] -> tokens (B, N, enc_dim), positions (B, N, 2)."""
        x, pos = self.patch_embed(img.to(self.trunk_dtype), true_shape)
        rope = self._rope_tables(pos, self.config.enc_embed_dim // self.config.enc_num_heads)
        for block in self.enc_blocks:
            x = block(x, rope)
        return self.enc_norm(x), pos

    def _rope_tables(self, pos: Tensor, head_dim: int) -> RotaryTables:
        """Rotation tables for ``pos``, in the dtype the blocks' queries will have (autocast aware)."""
        return self.rope.tables(pos, head_dim, attention_dtype(pos.device.type, self.trunk_dtype))

    def encode_priors(self, prior_pts3d: Tensor, true_shape: Tensor | None = None) -> Tensor | None:
        """Prior branch: (B, H, W, 3) prior point map -> (P + 1, B, N, dec_dim) injections.

        Entry 0 is added to the decoder input, entry i to the output of decoder layer i - 1.
        Returns ``None`` for a network without prior branch.
        """
        if self.patch_embed_point_cloud is None:
            return None
        return prior_injections(self.patch_embed_point_cloud, self.dec_blocks_pc, self.zero_convs, self.rope,
                                self.config.dec_num_heads, prior_pts3d.to(self.trunk_dtype), true_shape)

    def encode_frames(self, img: Tensor, true_shape: Tensor | None = None,
                      prior_pts3d: Tensor | None = None) -> FrameFeatures:
        """Everything that depends on one frame only, for B frames (see ``FrameFeatures``).

        - ``img``: (B, 3, H, W) in [-1, 1]; H, W multiples of the patch size.
        - ``true_shape``: (B, 2) int (height, width); defaults to (H, W).
        - ``prior_pts3d``: (B, H, W, 3) normalised prior point map; required iff the network has
          a prior branch.
        """
        return self._encode(*self._check_inputs(img, true_shape, prior_pts3d, "frames"))

    def _encode(self, img: Tensor, true_shape: Tensor, prior: Tensor | None) -> FrameFeatures:
        tokens, pos = self.encode_images(img, true_shape)
        dec_input = self.decoder_embed(tokens)
        injections = self.encode_priors(prior, true_shape) if prior is not None else None
        if injections is not None:
            dec_input = dec_input + injections[0]
            injections = injections[1:]
        return FrameFeatures(tokens, pos, dec_input, injections, true_shape, (img.shape[-2], img.shape[-1]))

    # --- per-pair half ------------------------------------------------------------------------
    @property
    def head_layers(self) -> tuple[int, ...]:
        """Indices of the decoder outputs the heads read (DPT hooks, or the last one)."""
        c = self.config
        return c.dpt_hooks if c.head_type == "dpt" else (c.dec_depth,)

    def decode(self, frames1: FrameFeatures, frames2: FrameFeatures, keep: Sequence[int] | None = None
               ) -> tuple[list[Tensor | None], list[Tensor | None]]:
        """Both decoders on B pairs (view 1 = ``frames1[b]``, view 2 = ``frames2[b]``).

        Returns two lists of dec_depth + 1 tensors (the heads' inputs): entry 0 the encoder
        output (B, N, enc_dim), entry i the output of decoder layer i - 1 (B, N, dec_dim) with
        the prior injection included, the last one through ``dec_norm``. With ``keep``, entries
        not listed are ``None`` so their memory is freed during the loop.
        """
        if len(frames1) != len(frames2):
            raise InputError(f"decode needs as many first views as second views, got {len(frames1)} "
                             f"and {len(frames2)}")
        if (frames1.injections is None) != (frames2.injections is None):
            raise InputError("decode needs both views encoded by the same network (prior injections differ)")
        kept = set(range(self.config.dec_depth + 1) if keep is None else keep)
        x1, x2 = frames1.dec_input, frames2.dec_input
        out1, out2 = [frames1.tokens], [frames2.tokens]
        head_dim = self.config.dec_embed_dim // self.config.dec_num_heads
        rope1, rope2 = self._rope_tables(frames1.pos, head_dim), self._rope_tables(frames2.pos, head_dim)
        injected = 0 if frames1.injections is None else frames1.injections.shape[0]
        for i, (block1, block2) in enumerate(zip(self.dec_blocks, self.dec_blocks2)):
            # Both views read the previous layer's (injected) pair.
            new1 = block1(x1, x2, rope1, rope2)
            new2 = block2(x2, x1, rope2, rope1)
            if i < injected:
                new1 = new1 + frames1.injections[i]
                new2 = new2 + frames2.injections[i]
            x1, x2 = new1, new2
            out1.append(x1 if i + 1 in kept else None)
            out2.append(x2 if i + 1 in kept else None)
        if self.config.dec_depth in kept:
            out1[-1], out2[-1] = self.dec_norm(x1), self.dec_norm(x2)
        return out1, out2

    def predict(self, decout1: Sequence[Tensor | None], decout2: Sequence[Tensor | None], frames1: FrameFeatures,
                frames2: FrameFeatures) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Heads + postprocess, outside autocast, in the heads' dtype (float32).

        Returns ``res1 = {"pts3d": (B,H,W,3), "conf": (B,H,W)}`` (view 1 in its own camera) and
        ``res2 = {"pts3d_in_other_view": (B,H,W,3), "conf": (B,H,W)}`` (view 2 in view 1's
        camera), in each sample's stored layout (see ``config.landscape_only``).
        """
        device_type = frames1.tokens.device.type
        with torch.autocast(device_type=device_type, enabled=False) if torch.amp.is_autocast_available(
                device_type) else contextlib.nullcontext():
            raw1 = self._run_head(self.downstream_head1, decout1, frames1)
            raw2 = self._run_head(self.downstream_head2, decout2, frames2)
            res1 = postprocess(raw1, self.config.depth_mode, self.config.conf_mode)
            res2 = postprocess(raw2, self.config.depth_mode, self.config.conf_mode)
        res2["pts3d_in_other_view"] = res2.pop("pts3d")
        return res1, res2

    def decode_pairs(self, frames1: FrameFeatures, frames2: FrameFeatures
                     ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Decoders + heads for B pairs of encoded frames; outputs as ``predict``."""
        decout1, decout2 = self.decode(frames1, frames2, keep=self.head_layers)
        return self.predict(decout1, decout2, frames1, frames2)

    def _run_head(self, head: nn.Module, decout: Sequence[Tensor | None], frames: FrameFeatures) -> Tensor:
        """Raw (B, 4, H, W) head output in the batch's stored layout."""
        dtype = next(head.parameters()).dtype
        decout = [None if t is None else t.to(dtype) for t in decout]
        h, w = frames.image_hw
        if not self.config.landscape_only:
            return head(decout, (h, w))
        # Training layout: portrait samples were decoded in their true orientation (w, h);
        # predict them so and transpose back to the landscape layout of the batch.
        portrait = portrait_rows(frames.true_shape, len(frames), h, w)
        if not portrait.any():
            return head(decout, (h, w))
        if portrait.all():
            return head(decout, (w, h)).transpose(-1, -2)
        land = head([None if t is None else t[~portrait] for t in decout], (h, w))
        port = head([None if t is None else t[portrait] for t in decout], (w, h)).transpose(-1, -2)
        raw = land.new_empty((len(frames), *land.shape[1:]))
        raw[~portrait], raw[portrait] = land, port
        return raw

    # --- the DUSt3R-family call ---------------------------------------------------------------
    def forward(self, view1: Mapping[str, Any], view2: Mapping[str, Any], *, symmetrized: bool = False
                ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Predict both views' point maps in view 1's camera frame, for B pairs.

        Each view is a dict with ``img`` (B, 3, H, W) float in [-1, 1], optional ``true_shape``
        (B, 2) int (height, width) and, for Align3R, ``prior_pts3d`` (B, H, W, 3) — the
        min-max-normalised prior point map (the official key ``pred_depth`` is accepted too).

        ``symmetrized=True``: the caller promises that the batch interleaves each pair with its
        swap, pair 2k + 1 being pair 2k with the views exchanged — (a, b), (b, a), (c, d),
        (d, c), … as ``align3r.train.symmetrize_batch`` builds it (B even) — so each distinct
        frame is encoded once (priors included) and the features re-interleaved. The trainer
        passes it; the official network instead infers it from the views' ``instance`` names
        (official ``dust3r/model.py``, ``AsymmetricCroCo3DStereo._encode_symmetrized``), which
        gives the same batches the shortcut. An argument of ``forward`` rather than a method, so
        that a ``DistributedDataParallel`` wrapper still synchronises the gradients.

        Returns ``(res1, res2)``: ``res1["pts3d"]`` (B, H, W, 3), ``res1["conf"]`` (B, H, W),
        ``res2["pts3d_in_other_view"]`` (B, H, W, 3), ``res2["conf"]`` (B, H, W); float32, points
        in network units, confidences > 1.
        """
        img1, shape1, prior1 = self._check_inputs(*self._read_view(view1, "view1"), "view1")
        img2, shape2, prior2 = self._check_inputs(*self._read_view(view2, "view2"), "view2")
        if img1.shape[0] != img2.shape[0]:
            raise InputError(f"view1 and view2 must hold the same number of pairs, got {img1.shape[0]} "
                             f"and {img2.shape[0]}")
        if symmetrized:
            if img1.shape[0] % 2:
                raise InputError(f"a symmetrized batch holds each pair followed by its swap (an even number of "
                                 f"pairs), got {img1.shape[0]} pairs; pass symmetrized=False")
            frames_a, frames_b = self._encode_two(img1[::2], shape1[::2], _every_other(prior1),
                                                  img2[::2], shape2[::2], _every_other(prior2))
            frames1, frames2 = _interleave(frames_a, frames_b), _interleave(frames_b, frames_a)
        else:
            frames1, frames2 = self._encode_two(img1, shape1, prior1, img2, shape2, prior2)
        return self.decode_pairs(frames1, frames2)

    def _encode_two(self, img1, shape1, prior1, img2, shape2, prior2) -> tuple[FrameFeatures, FrameFeatures]:
        """Encode both views, in one batch when their sizes agree."""
        if img1.shape[-2:] != img2.shape[-2:]:
            return self._encode(img1, shape1, prior1), self._encode(img2, shape2, prior2)
        prior = None if prior1 is None else torch.cat((prior1, prior2))
        frames = self._encode(torch.cat((img1, img2)), torch.cat((shape1, shape2)), prior)
        return frames.split(img1.shape[0])

    def _read_view(self, view: Mapping[str, Any], name: str) -> tuple[Tensor, Tensor | None, Tensor | None]:
        if not isinstance(view, Mapping) or "img" not in view:
            raise InputError(f"{name} must be a dict with 'img' (B, 3, H, W), 'true_shape' (B, 2) and, for "
                             f"Align3R, 'prior_pts3d' (B, H, W, 3)")
        prior = next((view[k] for k in PRIOR_KEYS if view.get(k) is not None), None)
        return view["img"], view.get("true_shape"), prior

    def _check_inputs(self, img: Tensor, true_shape: Tensor | None, prior: Tensor | None, name: str
                      ) -> tuple[Tensor, Tensor, Tensor | None]:
        if not isinstance(img, Tensor) or img.ndim != 4 or img.shape[1] != 3 or not img.is_floating_point():
            got = tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__
            raise InputError(f"{name}: 'img' must be a float (B, 3, H, W) tensor in [-1, 1], got {got}")
        b, _, h, w = img.shape
        patch = self.config.patch_size
        if h % patch or w % patch:
            raise InputError(f"{name}: image size {h}x{w} (HxW) is not a multiple of the patch size {patch}; resize "
                             f"or crop the frames (e.g. 512x288 for 16:9 video)")
        if true_shape is None:
            true_shape = torch.tensor([[h, w]], device=img.device).expand(b, 2)
        if not isinstance(true_shape, Tensor):
            true_shape = torch.as_tensor(true_shape)
        true_shape = true_shape.to(device=img.device, dtype=torch.int64)
        checkable = img.device.type != "meta"  # shape-only runs (FLOP counting) skip value checks
        if not self.config.landscape_only and checkable:
            if tuple(true_shape.shape) != (b, 2) or not bool((true_shape == torch.tensor([h, w],
                                                                                           device=img.device)).all()):
                raise InputError(f"{name}: true_shape must be ({b}, 2) rows equal to the image size ({h}, {w}) at "
                                 f"inference (one image size per batch), got {true_shape.tolist()}")
        if self.patch_embed_point_cloud is not None:
            if prior is None:
                raise InputError(f"{name}: this Align3R network needs the depth prior: give 'prior_pts3d' "
                                 f"(B, H, W, 3), the min-max-normalised prior point map (see align3r.priors)")
            if not isinstance(prior, Tensor) or tuple(prior.shape) != (b, h, w, 3):
                got = tuple(prior.shape) if isinstance(prior, Tensor) else type(prior).__name__
                raise InputError(f"{name}: 'prior_pts3d' must be ({b}, {h}, {w}, 3) like the image, got {got}")
            if checkable and not bool(torch.isfinite(prior).all()):
                raise InputError(f"{name}: 'prior_pts3d' contains NaN or infinite values (a constant depth "
                                 f"prior normalises to NaN); fix or drop that frame's prior")
            prior = prior.to(img.device)
        else:
            prior = None  # DUSt3R / MonST3R ignore a prior
        return img, true_shape, prior

    # --- persistence --------------------------------------------------------------------------
    # Thin Hugging-Face-style entry points. Loading and writing depend on this module, not the
    # reverse: they are imported when called, so importing the network never imports them.
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (our format) into ``directory``."""
        return save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, source: str | Path, device: torch.device | str = "cpu",
                        dtype: torch.dtype | None = None) -> Align3RNet:
        """``align3r.load_model(source, device, dtype)`` as a classmethod: registry name, file, folder
        or Hub repo id."""
        return load_network(source, cls, device, dtype)


def _init_transformer_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _every_other(x: Tensor | None) -> Tensor | None:
    return None if x is None else x[::2]

