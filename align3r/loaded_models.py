"""The weights a reconstruction needs, loaded once: network, depth-prior model, flow backend.

``run_pipeline`` loads them through :func:`load_models` for one source; ``align3r.many`` loads
them once per process and passes them to every source's run (each source still wraps the prior
model in its own run cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class LoadedModels:
    """- ``net``: the network, eval mode, on the run's device.
    - ``checkpoint``: where its weights were read from (``{"path", "kind"}``), None for a network
      passed in.
    - ``prior_source``: an ``align3r.priors`` source (not yet wrapped by a run cache), or None
      for a network without a prior branch.
    - ``flow``: an ``align3r.flow.backend.FlowBackend``, or None for ``flow="none"``.
    """

    net: Any
    checkpoint: dict[str, str] | None
    prior_source: Any
    flow: Any


def load_models(config, device: torch.device, prior_name: str, *, net=None, checkpoint=None, prior_source=None,
                flow=None) -> LoadedModels:
    """What ``config`` (a ``PipelineConfig``) names, loaded on ``device``, except what is passed in.

    The flow backend is loaded first: missing RAFT weights fail before the network or any prior.
    ``checkpoint``: where a passed ``net`` came from (kept for the manifest). ``prior_name``: the resolved ``prior`` setting (``align3r.priors.compatibility.resolve_prior_settings``).
    """
    from align3r.flow.backend import flow_backend
    from align3r.model.load import load_model
    from align3r.priors.registry import load_prior_source

    if flow is None:
        flow = flow_backend(config.flow, weights=config.flow_weights, iterations=config.flow_iterations,
                            device=device, progress=config.progress)
    if net is None:
        net, checkpoint = load_model(config.model, device, with_source=True)
    net = net.to(device).eval()
    if prior_source is None and net.config.with_prior:
        prior_source = load_prior_source(prior_name, model=config.prior_model, device=device,
                                         progress=config.progress, metric=config.prior_metric)
    return LoadedModels(net, checkpoint, prior_source, flow)
