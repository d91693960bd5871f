"""``load_prior(name)``: every prior source by the name users type (CLI, configs), and the one
parser of those names (:func:`parse_prior_name`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from align3r.errors import InputError
from align3r.priors.base import PriorSource

#: The forms of a prior name :func:`load_prior` accepts (for messages and help texts).
PRIOR_NAME_FORMS = (
    "depthpro",
    "depthanything (= depthanything-large), depthanything-small, depthanything-base",
    "external:<folder>",
    "official-cache:<depthpro|depthanything>[:<folder>]",
)

#: The monocular depth networks a prior name computes or reads the output of.
PRIOR_FAMILIES = ("depthpro", "depthanything")


@dataclass(frozen=True)
class PriorName:
    """A parsed prior name.

    - ``kind``: ``"depthpro"``, ``"depthanything"``, ``"external"`` or ``"official-cache"``.
    - ``size``: Depth Anything's size as typed (``"large"`` when none); not checked here.
    - ``model``: the official cache's model name (``official-cache:<model>[:<folder>]``).
    - ``folder``: the folder of ``external:<folder>`` / ``official-cache:<model>:<folder>``.
    """

    kind: str
    size: str | None = None
    model: str | None = None
    folder: str | None = None

    @property
    def family(self) -> str | None:
        """``depthpro`` / ``depthanything`` when the prior computes or reads one of them, else None
        (folders of depth maps from anything)."""
        if self.kind in PRIOR_FAMILIES:
            return self.kind
        if self.kind == "official-cache":
            model = _normalise(self.model or "")
            for family in PRIOR_FAMILIES:
                if model == family or model.startswith(family + "-"):
                    return family
        return None


def _normalise(text: str) -> str:
    return text.strip().lower().replace("_", "-")


def parse_prior_name(name: str) -> PriorName:
    """``name`` (see :data:`PRIOR_NAME_FORMS`) split into its parts; ``InputError`` for any other."""
    head, _, rest = str(name).partition(":")
    key = _normalise(head)
    if key == "depthpro" and not rest:
        return PriorName("depthpro")
    if key.startswith("depthanything") and not rest:
        return PriorName("depthanything", size=key.removeprefix("depthanything").lstrip("-") or "large")
    if key == "external" and rest:
        return PriorName("external", folder=rest)
    if key == "official-cache" and rest:
        model, _, folder = rest.partition(":")
        return PriorName("official-cache", model=model, folder=folder or None)
    raise InputError(f"unknown depth prior {name!r}; choose one of: {'; '.join(PRIOR_NAME_FORMS)}")


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
    parsed = parse_prior_name(name)
    if parsed.kind == "depthpro":
        from align3r.priors.depth_pro import DepthProPrior

        return DepthProPrior(**kwargs)
    if parsed.kind == "depthanything":
        from align3r.priors.depth_anything import DEPTH_ANYTHING_HUB_IDS, DepthAnythingPrior

        if parsed.size not in DEPTH_ANYTHING_HUB_IDS:
            raise InputError(f"unknown Depth Anything size {parsed.size!r}: use small, base or large")
        kwargs.setdefault("model", parsed.size)
        return DepthAnythingPrior(**kwargs)
    if parsed.kind == "external":
        from align3r.priors.external import FolderPrior

        return FolderPrior(parsed.folder, **kwargs)
    from align3r.priors.external import OfficialCachePrior

    return OfficialCachePrior(parsed.model, parsed.folder, **kwargs)


def load_prior_source(name: str, *, model: str | Path | None = None, device=None,
                      progress: bool = True, metric: bool = False) -> PriorSource | None:
    """The prior source a setting names, or None for ``"none"`` (a network without prior branch).

    Args:
        name: a prior name (:data:`PRIOR_NAME_FORMS`, ``"auto"`` already resolved:
            ``align3r.priors.compatibility.resolve_prior_name``) or ``"none"``.
        model: Hub id or folder overriding the default weights of a computed prior (Depth Pro,
            Depth Anything); ignored by priors read from files.
        device: where a computed prior runs.
        progress: progress bars.
        metric: user depth (``external:<folder>``) is metric depth in metres (``prior_metric``).
    """
    if name == "none":
        return None
    kind = parse_prior_name(name).kind
    kwargs: dict = {"progress": progress}
    if kind in PRIOR_FAMILIES:
        kwargs["device"] = device
        if model:
            kwargs["model"] = model
    if kind == "external":
        kwargs["metric"] = metric
    return load_prior(name, **kwargs)


def prior_is_metric(name: str, declared: bool = False) -> bool:
    """Whether the prior ``name`` gives metric depth (metres), known from the name alone (nothing
    loaded): Depth Pro and its official caches are; Depth Anything (relative disparity) and
    ``none`` are not; user depth (``external:<folder>``) is when ``declared`` (``prior_metric=true``).

    Raises:
        InputError: ``declared`` for a prior that is not user depth.
    """
    parsed = None if name == "none" else parse_prior_name(name)
    if parsed is not None and parsed.kind == "external":
        return declared
    if declared:
        raise InputError(f"prior_metric=true declares user depth (prior=external:<folder>) metric, not prior={name}; "
                         "Depth Pro is metric by itself, Depth Anything never is")
    return parsed is not None and parsed.family == "depthpro"
