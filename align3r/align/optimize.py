"""The optimisation loop: the objective composed of the loss terms, the schedule and Adam."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from align3r.align.config import AlignConfig
from align3r.align.losses import AlignmentLoss, Workspace, flow_loss, temporal_smoothness
from align3r.align.scene import SceneModel
from align3r.align.types import PairPredictions
from align3r.errors import Align3RError


class AlignmentDiverged(Align3RError):
    """The optimisation produced NaN / inf (degenerate predictions or too large a step).

    ``problem`` says what happened, ``advice`` what to try; the advice names the settings of
    ``align3r infer`` unless a caller with other settings keys gives its own (:meth:`with_advice`;
    ``align3r eval`` does).
    """

    ADVICE = ("Try a lower learning rate (align_settings.lr=0.01), the 'fast' preset, or check the frames "
              "and depth priors")

    def __init__(self, problem: str, advice: str | None = None) -> None:
        self.problem = problem
        self.advice = self.ADVICE if advice is None else advice
        super().__init__(f"{problem}. {self.advice}" if self.advice else problem)

    def __reduce__(self):  # picklable with both fields (exceptions re-create from their args)
        return type(self), (self.problem, self.advice)

    def with_advice(self, advice: str) -> AlignmentDiverged:
        """The same error with other advice (for a caller whose settings have other keys)."""
        return type(self)(self.problem, advice)


def learning_rate(config: AlignConfig, iteration: int) -> float:
    """Learning rate of ``iteration`` (0-based): cosine or linear from lr to lr_min over the
    iterations (official formulas, evaluated at t = iteration / iterations), times an optional
    linear warm-up factor ``(iteration + 1) / warmup_iterations``."""
    t = iteration / max(config.iterations, 1)
    if config.schedule == "cosine":
        lr = config.lr_min + (config.lr - config.lr_min) * (1 + math.cos(math.pi * t)) / 2
    else:
        lr = config.lr + (config.lr_min - config.lr) * t
    if config.warmup_iterations > 0:
        lr *= min(1.0, (iteration + 1) / config.warmup_iterations)
    return lr


@dataclass
class FlowTerm:
    """Optical flow and static-pixel masks the flow loss compares against.

    - ``edges``: (E, 2) int64; ``flow_ij``, ``flow_ji``: (E, 2, H, W); ``static``: (N, H, W) bool.
    """

    edges: Tensor
    flow_ij: Tensor
    flow_ji: Tensor
    static: Tensor


class Objective:
    """Total loss = alignment + temporal_weight * smoothness + flow_weight * flow (from flow_start on).

    Args:
        preds: pair predictions (confidences as they should weigh: weights = log(conf)).
        config: weights and switches.
        flow: optional :class:`FlowTerm`; without it the flow term is off.
    """

    def __init__(self, preds: PairPredictions, config: AlignConfig, flow: FlowTerm | None = None) -> None:
        self.config = config
        self.alignment = AlignmentLoss(preds.edges, preds.pts3d_i, preds.pts3d_j, preds.conf_i.log(),
                                       preds.conf_j.log())
        self.flow = flow if (flow is not None and config.flow_weight > 0) else None
        self.flow_first_iteration = config.flow_start * config.iterations
        self._flow_workspace = Workspace()

    def __call__(self, model: SceneModel, iteration: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Returns the total loss and the unweighted terms (0-dim tensors)."""
        cfg = self.config
        state = model.evaluate()
        terms = {"alignment": self.alignment(state.depth, state.focals, model.principal_point, model.pixels,
                                             state.rotations, state.translations, state.edge_linear,
                                             state.edge_offset)}
        total = terms["alignment"]
        if cfg.temporal_weight > 0 and model.num_frames > 1:
            terms["temporal"] = temporal_smoothness(state.rotations, state.translations, cfg.translation_weight)
            total = total + cfg.temporal_weight * terms["temporal"]
        if self.flow is not None and iteration >= self.flow_first_iteration:
            f = self.flow
            value = flow_loss(state.depth.reshape(-1, model.height, model.width), state.rotations,
                              state.translations, model.intrinsics(state.focals), f.edges, f.flow_ij, f.flow_ji,
                              f.static, cfg.flow_pixel_cutoff, workspace=self._flow_workspace)
            terms["flow"] = value
            if cfg.flow_threshold > 0:  # official guard: a diverging flow term is dropped for the iteration
                value = torch.where(value > cfg.flow_threshold, torch.zeros_like(value), value)
            total = total + cfg.flow_weight * value
        return total, terms


def _check_finite(total: Tensor, iteration: int) -> None:
    if not bool(torch.isfinite(total)):
        raise AlignmentDiverged(
            f"global alignment diverged by iteration {iteration + 1} (the loss is {float(total.detach())}); the "
            "point maps may be degenerate for this input")


def optimise(model: SceneModel, objective: Objective, config: AlignConfig, progress: bool | str = True
             ) -> tuple[list[float], dict[str, list[float]]]:
    """Run Adam on the model's trainable parameters (``progress``: a tqdm bar; a string is its
    label, default "global alignment").

    Returns:
        the total loss of every iteration (evaluated before its step) and each term's history
        (``{name: values}``, a term's list starts when the term switches on).
    """
    groups = [{"params": params, "lr_scale": config.lr_scale(name)}
              for name, params in model.parameter_groups().items() if params]
    if not groups or config.iterations == 0:
        return [], {}
    # fused Adam: one kernel per parameter instead of a dozen (same update rule)
    optimizer = torch.optim.Adam(groups, lr=config.lr, betas=config.adam_betas, fused=True)
    totals: list[Tensor] = []
    terms_hist: dict[str, list[Tensor]] = {}
    desc = progress if isinstance(progress, str) else "global alignment"
    bar = tqdm(range(config.iterations), desc=desc, disable=not progress, leave=False)
    for it in bar:
        lr = learning_rate(config, it)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        optimizer.zero_grad(set_to_none=True)
        total, terms = objective(model, it)
        total.backward()
        optimizer.step()
        totals.append(total.detach())
        for name, value in terms.items():
            terms_hist.setdefault(name, []).append(value.detach())
        if progress and it % 10 == 0:
            bar.set_postfix_str(f"lr={lr:.3g} loss={float(total.detach()):.5g}")
        if it % 25 == 24 or it == config.iterations - 1:  # a host sync every 25 steps only
            _check_finite(total, it)
    # one device-to-host transfer at the end instead of a sync per iteration
    return (torch.stack(totals).tolist(), {k: torch.stack(v).tolist() for k, v in terms_hist.items()})
