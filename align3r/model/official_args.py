"""Official constructor strings and Hub ``config.json`` files -> ``Align3RConfig``, without ``eval``.

An official checkpoint names its network with a Python expression such as
``AsymmetricCroCo3DStereo(pos_embed='RoPE100', img_size=(512, 512), head_type='dpt', ...,
depth_mode=('exp', -inf, inf), ...)``. The official loader ``eval``s it. We parse it with ``ast``
and accept only keyword arguments whose values are literals (strings, numbers, booleans, ``None``,
tuples/lists of those, and ``inf`` / ``-inf`` / ``float('inf')``); anything else is refused with
an error naming it. Keywords left out take the official constructor's defaults, which differ
from our config's (e.g. ``head_type='linear'``, ``pos_embed='cosine'``).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from typing import Any

from align3r.errors import CheckpointError, InputError
from align3r.model.config import Align3RConfig

OFFICIAL_CLASS = "AsymmetricCroCo3DStereo"

# Defaults of AsymmetricCroCo3DStereo.__init__ and CroCoNet.__init__ for keywords a string omits.
OFFICIAL_DEFAULTS: dict[str, Any] = {
    "output_mode": "pts3d",
    "head_type": "linear",
    "depth_mode": ("exp", -math.inf, math.inf),
    "conf_mode": ("exp", 1, math.inf),
    "freeze": "none",
    "landscape_only": True,
    "patch_embed_cls": "PatchEmbedDust3R",
    "img_size": 224,
    "patch_size": 16,
    "enc_embed_dim": 768,
    "enc_depth": 12,
    "enc_num_heads": 12,
    "dec_embed_dim": 512,
    "dec_depth": 8,
    "dec_num_heads": 16,
    "mlp_ratio": 4,
    "norm_im2_in_dec": True,
    "pos_embed": "cosine",
}
# Accepted but irrelevant to the network we build, with the reason.
IGNORED_KEYWORDS: dict[str, str] = {
    "mask_ratio": "CroCo pretraining masking ratio; DUSt3R-family networks never mask",
}


def parse_official_args(text: str) -> dict[str, Any]:
    """Keyword arguments of an official constructor string, as Python literals.

    Raises ``CheckpointError`` on anything that is not ``AsymmetricCroCo3DStereo(k=literal, ...)``.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise CheckpointError(f"cannot parse the checkpoint's model string {text!r}: {exc.msg}") from None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise CheckpointError(f"the checkpoint's model string is not a constructor call: {text!r}")
    if call.func.id != OFFICIAL_CLASS:
        raise CheckpointError(f"unsupported network class {call.func.id!r} in the checkpoint (only "
                              f"{OFFICIAL_CLASS}: Align3R, DUSt3R, MonST3R); string: {text!r}")
    if call.args:
        raise CheckpointError(f"positional arguments are not supported in the model string {text!r}")
    kwargs: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise CheckpointError(f"'**' expansion is not supported in the model string {text!r}")
        kwargs[keyword.arg] = _literal(keyword.value, keyword.arg, text)
    return kwargs


def _literal(node: ast.expr, name: str, text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        values = [_literal(e, name, text) for e in node.elts]
        return tuple(values) if isinstance(node, ast.Tuple) else values
    if isinstance(node, ast.Name) and node.id == "inf":
        return math.inf
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, name, text)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str) and node.args[0].value.strip().lower() in ("inf", "-inf")):
        return float(node.args[0].value)
    raise CheckpointError(f"unsupported value for {name!r} in the model string (only literals and inf are "
                          f"accepted): {ast.unparse(node)!r} in {text!r}")


def config_from_official_kwargs(kwargs: Mapping[str, Any], *, with_prior: bool, for_inference: bool = True,
                                source: str = "checkpoint") -> Align3RConfig:
    """``Align3RConfig`` from official constructor keywords (string or Hub ``config.json``).

    Missing keywords take the official defaults; ``with_prior`` comes from the state dict (the
    Align3R and DUSt3R strings are identical). ``for_inference`` swaps in the inference patch
    embedding and head orientation, as the official ``load_model`` does.
    """
    unknown = sorted(set(kwargs) - set(OFFICIAL_DEFAULTS) - set(IGNORED_KEYWORDS))
    if unknown:
        raise CheckpointError(f"{source}: unknown constructor keywords {unknown}; this loader understands "
                              f"{sorted(OFFICIAL_DEFAULTS)} (and ignores {sorted(IGNORED_KEYWORDS)})")
    values = {**OFFICIAL_DEFAULTS, **{k: v for k, v in kwargs.items() if k not in IGNORED_KEYWORDS}}
    try:
        config = Align3RConfig(**values, with_prior=with_prior)
    except InputError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    return config.for_inference() if for_inference else config


def model_from_official_args(text: str, *, with_prior: bool = True, for_inference: bool = True) -> Align3RConfig:
    """Parse an official constructor string (``ckpt['args'].model``) into our config.

    ``with_prior`` tells Align3R (True) from DUSt3R / MonST3R (False): their strings are
    identical, so ``load_model`` decides it from the state dict. ``for_inference`` (default)
    replaces ``ManyAR_PatchEmbed`` by the inference embedding and sets ``landscape_only=False``,
    as the official ``load_model`` does. Never evaluates the string.
    """
    return config_from_official_kwargs(parse_official_args(text), with_prior=with_prior,
                                       for_inference=for_inference, source=f"model string {text!r}")


def official_args_from_config(config: Align3RConfig) -> str:
    """The official constructor string that builds ``config``'s network (``with_prior`` aside,
    which only the state dict carries); ``model_from_official_args`` inverts it."""

    def literal(value: Any) -> str:
        if isinstance(value, float) and math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, tuple):
            return "(" + ", ".join(literal(v) for v in value) + ")"
        return repr(value)

    keys = ("pos_embed", "patch_embed_cls", "img_size", "head_type", "output_mode", "depth_mode", "conf_mode",
            "enc_embed_dim", "enc_depth", "enc_num_heads", "dec_embed_dim", "dec_depth", "dec_num_heads",
            "patch_size", "mlp_ratio", "norm_im2_in_dec", "freeze", "landscape_only")
    body = ", ".join(f"{k}={literal(getattr(config, k))}" for k in keys)
    return f"{OFFICIAL_CLASS}({body})"
