"""The DUSt3R-family network (Align3R, DUSt3R, MonST3R) and its checkpoints.

- ``Align3RNet``: the network; ``forward(view1, view2)``, or ``encode_frames`` once per frame and
  ``decode_pairs`` per edge.
- ``Align3RConfig`` + ``PRESETS`` / ``preset(name)``: architecture descriptions.
- ``load_model(source, device, dtype)``: the one way to load a network (official ``.pth`` / Hub
  folder / repo id / released name); ``Align3RNet.from_pretrained`` calls it (``load.py``).
- ``read_checkpoint``, ``save_pretrained``, ``convert_checkpoint``: checkpoint files
  (``checkpoints/``).
- ``model_from_official_args(string)``: the official constructor string parsed, never evaluated.
- ``REGISTRY``: released checkpoints by short name; ``resolve_checkpoint(name)``.
- ``init_align3r_from_dust3r``: DUSt3R state dict -> Align3R training initialisation.
"""

from align3r.model.checkpoints.convert import convert_checkpoint
from align3r.model.checkpoints.format import LoadedCheckpoint
from align3r.model.checkpoints.read import read_checkpoint
from align3r.model.checkpoints.write import save_pretrained
from align3r.model.config import PRESETS, Align3RConfig, preset
from align3r.model.dust3r_init import init_align3r_from_dust3r
from align3r.model.load import load_model
from align3r.model.network import Align3RNet, FrameFeatures
from align3r.model.official_args import model_from_official_args
from align3r.model.registry import REGISTRY, ReleasedCheckpoint, resolve_checkpoint
from align3r.model.state_dict import official_to_native

__all__ = [
    "PRESETS",
    "REGISTRY",
    "Align3RConfig",
    "Align3RNet",
    "FrameFeatures",
    "LoadedCheckpoint",
    "ReleasedCheckpoint",
    "convert_checkpoint",
    "init_align3r_from_dust3r",
    "load_model",
    "model_from_official_args",
    "official_to_native",
    "preset",
    "read_checkpoint",
    "resolve_checkpoint",
    "save_pretrained",
]
