"""``load_prior(name)``: every prior source by the name users type (CLI, configs)."""

from __future__ import annotations

from align3r.errors import InputError
from align3r.priors.base import PriorSource

PRIOR_NAMES = (
    "depthpro",
    "depthanything (= depthanything-large), depthanything-small, depthanything-base",
    "external:<folder>",
    "official-cache:<depthpro|depthanything>[:<folder>]",
)


def load_prior(name: str, **kwargs) -> PriorSource:
    """Build a prior source from its name. Nothing heavy happens here: weights load on first use.

    - ``"depthpro"`` → :class:`~align3r.priors.depth_pro.DepthProPrior` (``apple/DepthPro-hf``;
      ``model=`` a Hub id or folder overrides).
    - ``"depthanything"``, ``"depthanything-small|base|large"`` →
      :class:`~align3r.priors.depth_anything.DepthAnythingPrior` (Large by default, as the paper).
    - ``"external:<folder>"`` → :class:`~align3r.priors.external.FolderPrior` (``kind=``, ``scale=``,
      ``focal_px=``, ...).
    - ``"official-cache:<depthpro|depthanything>"`` (files beside the frames) or
      ``"official-cache:<model>:<folder>"`` → :class:`~align3r.priors.external.OfficialCachePrior`.

    ``kwargs`` go to the class (``device``, ``dtype``, ``batch_size``, ``progress``, ... are
    accepted by all of them).
    """
    head, _, rest = name.partition(":")
    key = head.strip().lower().replace("_", "-")
    if key == "depthpro" and not rest:
        from align3r.priors.depth_pro import DepthProPrior

        return DepthProPrior(**kwargs)
    if key.startswith("depthanything") and not rest:
        from align3r.priors.depth_anything import DEPTH_ANYTHING_HUB_IDS, DepthAnythingPrior

        size = key.removeprefix("depthanything").lstrip("-") or "large"
        if size not in DEPTH_ANYTHING_HUB_IDS:
            raise InputError(f"unknown Depth Anything size {size!r}: use small, base or large")
        kwargs.setdefault("model", size)
        return DepthAnythingPrior(**kwargs)
    if key == "external" and rest:
        from align3r.priors.external import FolderPrior

        return FolderPrior(rest, **kwargs)
    if key == "official-cache" and rest:
        from align3r.priors.external import OfficialCachePrior

        model, _, folder = rest.partition(":")
        return OfficialCachePrior(model, folder or None, **kwargs)
    raise InputError(f"unknown depth prior {name!r}; choose one of: {'; '.join(PRIOR_NAMES)}")


def prior_is_metric(name: str, declared: bool = False) -> bool:
    """Whether the prior ``name`` gives metric depth (metres), known from the name alone (nothing
    loaded): Depth Pro and its official caches are; Depth Anything (relative disparity) and
    ``none`` are not; user depth (``external:<folder>``) is when ``declared`` (``prior_metric=true``).

    Raises:
        InputError: ``declared`` for a prior that is not user depth.
    """
    head, _, rest = name.partition(":")
    key = head.strip().lower().replace("_", "-")
    if key == "external":
        return declared
    if declared:
        raise InputError(f"prior_metric=true declares user depth (prior=external:<folder>) metric, not prior={name}; "
                         "Depth Pro is metric by itself, Depth Anything never is")
    if key == "official-cache":
        return rest.partition(":")[0].strip().lower() == "depthpro"
    return key == "depthpro"
