"""The fine-tuning loop: DDP, accumulation, mixed precision, checkpoints, resume, evaluation.

One :class:`Trainer` per process. Under ``torchrun`` every process runs the same code on its own
slice of each global batch (``align3r.data.sampler``); without torchrun it is a single process.
The recipe is the reference's (official ``train.sh``; ``dust3r/training.py``, ``train`` and
``train_one_epoch``):

- every pair is fed in both orders (``symmetrize``), the loss is ``ConfLoss`` (α = 0.2);
- AdamW on the official trainable set, lr set at the start of each accumulation window from the
  fractional epoch (warm-up then half-cosine), ``accum_iter`` forward passes per step;
- after each epoch: the scale-shift-invariant test loss on every test set; the lowest median
  makes ``checkpoint-best``; ``checkpoint-last`` is rewritten, ``checkpoint-<k>`` kept every
  ``keep_freq`` epochs; at the end ``checkpoint-final`` and ``final_model/``.

Differences from the reference, all deliberate: gradient-accumulation leftovers at the end of an
epoch (micro-batches that would never reach an optimizer step) are skipped instead of computed
and discarded; mid-epoch checkpoints are possible (``save_every_steps``, ``max_steps``, Ctrl-C)
and a resumed run continues the exact trajectory; test medians pool the batches of all ranks; no
anomaly detection; bf16 autocast on GPU instead of fp32 (``amp: none`` restores fp32).

Ctrl-C (``KeyboardInterrupt``) writes ``checkpoint-last`` at the last completed optimizer step
(the partial accumulation window is dropped: parameters, optimizer and scaler are untouched until
a window completes, and the optimizer step itself is shielded from SIGINT), so the same command
resumes there. Under torchrun the first process does this when the interrupt reaches it; every
process holds the same state after a completed step, so its checkpoint is the run's.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from align3r.data.mixing import PairSampleSet
from align3r.data.sampler import ResolutionBatchSampler, SequentialBatchSampler
from align3r.errors import Align3RError, InputError
from align3r.train import checkpoint as ckpt
from align3r.train.config import TrainConfig
from align3r.train.distributed import (
    DistContext,
    all_gather_floats,
    any_across_ranks,
    barrier,
    means_across_ranks,
    setup_distributed,
)
from align3r.train.losses import ConfLoss, Regr3D, ScaleShiftInvLoss
from align3r.train.params import parameter_groups, select_trainable
from align3r.train.runlog import RunLogger
from align3r.train.schedule import learning_rate

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a call to :meth:`Trainer.fit` did.

    - ``status``: ``"finished"`` (all epochs) or ``"stopped"`` (``max_steps`` reached).
    - ``epoch``: epochs completed; ``optimizer_steps``: in total, across resumes.
    - ``best_test_loss``: lowest median test loss seen (inf without test sets).
    - ``step_losses``: mean training loss of each optimizer step of *this* call (this rank).
    - ``test``: last evaluation, {test set: {"loss_med", "loss_avg"}}.
    """

    status: str
    epoch: int
    optimizer_steps: int
    best_test_loss: float
    step_losses: list[float] = field(default_factory=list)
    test: dict[str, dict[str, float]] = field(default_factory=dict)


def symmetrize_batch(view1: dict[str, Any], view2: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Interleave each pair with its swap: B pairs → 2B pairs (1,2), (2,1), (1',2'), (2',1'), …"""

    def interleave(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in a.items():
            other = b[key]
            if isinstance(value, torch.Tensor):
                out[key] = torch.stack((value, other), dim=1).flatten(0, 1)
            else:
                out[key] = [x for pair in zip(value, other) for x in pair]
        return out

    return interleave(view1, view2), interleave(view2, view1)


def lower_median(values: list[float]) -> float:
    """The lower middle value (torch's median convention, used by the reference's logger)."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) while the block runs, then raise ``KeyboardInterrupt`` after it.

    Guards the optimizer step and the position update (and the end-of-epoch bookkeeping with its
    checkpoints), which must happen together for a checkpoint written on interrupt to be
    consistent. A second Ctrl-C interrupts at once. Only where Python's default handler is
    installed and on the main thread (signal handlers can be set nowhere else).
    """
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    received: list[int] = []

    def hold(signum, frame) -> None:
        received.append(signum)
        signal.signal(signal.SIGINT, previous)  # the next one is not held back

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def _saved_model_config(state: Mapping[str, Any]):
    """The network configuration a training checkpoint records, or None."""
    from align3r.model import Align3RConfig

    try:
        return Align3RConfig.from_dict(dict(state["model_config"]))
    except (KeyError, TypeError, ValueError):  # absent, None, or not a configuration
        return None


def unused_parameters(net: nn.Module) -> list[str]:
    """Trainable parameters that no forward pass uses: ``resConfUnit1`` of the deepest DPT fusion
    block (``refinenet4``), which never gets a skip input (``align3r.model.dpt_head``). DDP needs
    ``find_unused_parameters`` exactly when this is not empty."""
    return [name for name, p in net.named_parameters() if p.requires_grad and ".refinenet4.resConfUnit1." in name]


class Trainer:
    """Fine-tune ``model`` on ``train_set``; evaluate on ``test_sets``.

    Args:
        config: how to train. model: the network (built with its training-time configuration,
            e.g. ``preset(...).for_training()``). train_set: a :class:`PairSampleSet` of the
            training mixture. test_sets: name → :class:`PairSampleSet` (may be empty).
        init_state_dict: weights to start from when no ``checkpoint-last.pth`` exists in the
            output folder (e.g. ``init_align3r_from_dust3r`` of a DUSt3R checkpoint); ignored
            when resuming.
        ctx: the process group; by default read from the torchrun environment.
    """

    def __init__(self, config: TrainConfig, model: nn.Module, train_set: PairSampleSet,
                 test_sets: Mapping[str, PairSampleSet] | None = None, *,
                 init_state_dict: Mapping[str, torch.Tensor] | None = None, ctx: DistContext | None = None):
        self.cfg = config
        self.ctx = ctx or setup_distributed(config.device)
        self.device = self.ctx.device
        self.output_dir = Path(config.output_dir)
        self.train_set = train_set
        self.test_sets = dict(test_sets or {})
        self.net = model.to(self.device)
        self.autocast_dtype = self._autocast_dtype()
        if config.tf32 and self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        self.trainable = select_trainable(self.net, config.trainable, config.train_decoder_embed)
        opt = config.optim
        self.optimizer = torch.optim.AdamW(parameter_groups(self.net, opt.weight_decay), lr=opt.lr,
                                           betas=tuple(opt.betas), eps=opt.eps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
        self.train_criterion = ConfLoss(Regr3D("avg_dis"), alpha=config.conf_alpha)
        self.test_criterion = ScaleShiftInvLoss(gt_scale=True)

        self.sampler = ResolutionBatchSampler(len(train_set), config.batch_size, len(train_set.resolutions),
                                              world_size=self.ctx.world_size, rank=self.ctx.rank)
        self.steps_per_epoch = len(self.sampler) // config.accum_iter
        if self.steps_per_epoch == 0:
            raise InputError(f"an epoch has {len(self.sampler)} batches per process, fewer than accum_iter="
                             f"{config.accum_iter}: enlarge the training mixture or lower accum_iter")

        self.epoch = 0  # next epoch to train
        self.step = 0  # next micro-batch of that epoch
        self.optimizer_steps = 0
        self.best_test_loss = math.inf
        self.last_test: dict[str, dict[str, float]] = {}
        self.saved_position: tuple[int, int] | None = None  # (epoch, step) of checkpoint-last on disk
        self.resumed = self._resume()
        if not self.resumed and init_state_dict is not None:
            ckpt.check_fits(self.net, init_state_dict, "the initial weights (init_state_dict)", None, "",
                            "build the network they were saved from")
            self.net.load_state_dict(init_state_dict, strict=True)
        self.position_rng = self._capture_rng()  # the RNG state at the current position
        self.model = self._wrap_ddp(self.net)
        self.logger = RunLogger(self.output_dir, enabled=self.ctx.is_main,
                                resume=(self.epoch, self.epoch + self.step / len(self.sampler)))

    # --- setup ----------------------------------------------------------------------------------
    def _autocast_dtype(self) -> torch.dtype | None:
        """bf16 on CUDA for ``auto``/``bf16`` (fp16 on GPUs without bf16 under ``auto``); None = fp32."""
        amp, dev = self.cfg.amp, self.device.type
        if amp == "none" or (amp == "auto" and dev != "cuda"):
            return None
        if amp == "fp16":
            if dev != "cuda":
                raise InputError("amp 'fp16' needs a CUDA device; use 'bf16' or 'none' on CPU")
            return torch.float16
        if dev == "cuda" and not torch.cuda.is_bf16_supported():
            if amp == "bf16":
                raise InputError("this GPU does not support bf16; use amp=fp16 or amp=none")
            return torch.float16
        return torch.bfloat16

    def _wrap_ddp(self, net: nn.Module) -> nn.Module:
        if not self.ctx.distributed:
            return net
        # find_unused_parameters only where some trainable parameter never gets a gradient (the
        # DPT's refinenet4.resConfUnit1): it costs a graph traversal per step, and DDP warns on
        # every rank when it finds nothing. (static_graph would also tolerate unused parameters,
        # but breaks no_sync() accumulation windows.)
        return DistributedDataParallel(net, device_ids=[self.ctx.local_rank] if self.device.type == "cuda" else None,
                                       find_unused_parameters=bool(unused_parameters(net)))

    def _where(self, epoch: int | None = None, step: int | None = None) -> str:
        """"epoch 2/50, batch 8/1734" (1-based epoch; batches of this process done in that epoch)."""
        epoch = self.epoch if epoch is None else epoch
        step = self.step if step is None else step
        if epoch >= self.cfg.optim.epochs:
            return f"the end of epoch {self.cfg.optim.epochs}/{self.cfg.optim.epochs}"
        return f"epoch {epoch + 1}/{self.cfg.optim.epochs}, batch {step}/{len(self.sampler)}"

    def _resume(self) -> bool:
        path = self.output_dir / ckpt.LAST
        if not path.is_file():
            return False
        state = ckpt.load_checkpoint(path, map_location=self.device)
        epoch, step, steps = int(state["epoch"]), int(state["step"]), int(state["optimizer_steps"])
        global_batch = state.get("batch_size", 0) * state.get("world_size", 0)
        if global_batch != self.cfg.batch_size * self.ctx.world_size and step > 0:
            raise InputError(f"{path} stopped mid-epoch with {global_batch} pairs per forward pass over all "
                             f"processes, this run has {self.cfg.batch_size * self.ctx.world_size}: resume with "
                             "the same batch_size x processes, or start a new output_dir")
        saved_accum = int((state.get("train_config") or {}).get("accum_iter", self.cfg.accum_iter))
        if saved_accum != self.cfg.accum_iter and step > 0:
            # its accumulation windows no longer line up with this run's: finish the epoch first
            end_of_epoch = steps + ((len(self.sampler) // saved_accum) * saved_accum - step) // saved_accum
            raise InputError(f"{path} stopped mid-epoch ({self._where(epoch, step)}) with train.accum_iter="
                             f"{saved_accum}, this run has {self.cfg.accum_iter}: resume with train.accum_iter="
                             f"{saved_accum} (with train.max_steps={end_of_epoch} it stops at the end of the "
                             "epoch, from where another accum_iter can go on), or start a new output_dir")
        ckpt.check_fits(self.net, state["model"], str(path), _saved_model_config(state), "resume with",
                        "start a new output_dir")
        self.net.load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step, self.optimizer_steps = epoch, step, steps
        self.best_test_loss = float(state["best_test_loss"])
        ckpt.restore_rng(state["rng"])
        self.saved_position = (epoch, step)
        if self.ctx.is_main:
            log.info("resumed from %s at %s (%d optimizer steps done)", path, self._where(), self.optimizer_steps)
        return True

    # --- checkpoints ----------------------------------------------------------------------------
    def _capture_rng(self) -> dict[str, Any] | None:
        """The RNG states to save with the current position (main process only: it saves)."""
        return ckpt.capture_rng() if self.ctx.is_main else None

    def _state(self) -> dict[str, Any]:
        config = getattr(self.net, "config", None)
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "optimizer_steps": self.optimizer_steps,
            "best_test_loss": self.best_test_loss,
            "rng": self.position_rng,
            "train_config": self.cfg.to_dict(),
            "model_config": config.to_dict() if hasattr(config, "to_dict") else None,
            "world_size": self.ctx.world_size,
            "batch_size": self.cfg.batch_size,
        }

    def _save(self, *names: str) -> None:
        if self.ctx.is_main and names:
            state = self._state()
            for name in names:
                ckpt.save_checkpoint(self.output_dir / name, state)
            if ckpt.LAST in names:
                self.saved_position = (self.epoch, self.step)

    def _save_on_interrupt(self) -> None:
        """Ctrl-C: write ``checkpoint-last`` at the last completed optimizer step and say how to resume.

        The state there is consistent: parameters, optimizer and scaler change only in the (SIGINT-
        shielded) optimizer step, the gradients of the unfinished window are dropped, and
        ``position_rng`` is the RNG state of that position. On the main process only.
        """
        if not self.ctx.is_main:
            return
        path = self.output_dir / ckpt.LAST
        where = f"{self._where()} ({self.optimizer_steps} optimizer steps done)"
        if self.saved_position == (self.epoch, self.step):
            log.warning("interrupted; %s is at the last completed optimizer step, %s: run the same command "
                        "again to resume from there", path, where)
        elif self.optimizer_steps == 0 and (self.epoch, self.step) == (0, 0):
            log.warning("interrupted before the first optimizer step: nothing to save; the same command "
                        "starts over")
        else:
            self._save(ckpt.LAST)
            log.warning("interrupted; saved %s at the last completed optimizer step, %s: run the same "
                        "command again to resume from there", path, where)

    def _save_final(self) -> None:
        if not self.ctx.is_main:
            return
        config = getattr(self.net, "config", None)
        state = {"model": self.net.state_dict(), "epoch": self.epoch, "optimizer_steps": self.optimizer_steps,
                 "best_test_loss": self.best_test_loss,
                 "model_config": config.to_dict() if hasattr(config, "to_dict") else None}
        ckpt.save_checkpoint(self.output_dir / ckpt.FINAL, state)
        if hasattr(config, "for_inference"):
            from align3r.model.checkpoints.write import write_checkpoint

            write_checkpoint(config.for_inference(), self.net.state_dict(), self.output_dir / ckpt.FINAL_MODEL_DIR)

    # --- one batch ------------------------------------------------------------------------------
    def _to_device(self, view: dict[str, Any]) -> dict[str, Any]:
        return {k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                for k, v in view.items()}

    def _forward_loss(self, model: nn.Module, batch, criterion) -> tuple[torch.Tensor, dict[str, float]]:
        view1, view2 = (self._to_device(v) for v in batch)
        if self.cfg.symmetrize:
            view1, view2 = symmetrize_batch(view1, view2)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            # symmetrize_batch's interleaving, said explicitly: each distinct frame is encoded once
            pred1, pred2 = model(view1, view2, symmetrized=self.cfg.symmetrize)
        return criterion(view1, view2, pred1, pred2)

    def _loader(self, dataset: PairSampleSet, batch_sampler) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, num_workers=self.cfg.num_workers,
                                           pin_memory=self.device.type == "cuda")

    def _set_lr(self, epoch_f: float) -> float:
        o = self.cfg.optim
        lr = learning_rate(epoch_f, lr=o.lr, min_lr=o.min_lr, warmup_epochs=o.warmup_epochs, epochs=o.epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    # --- loops ----------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train from the current position (fresh or resumed) to the last epoch or ``max_steps``.

        On ``KeyboardInterrupt`` ``checkpoint-last`` is written at the last completed optimizer
        step (see the module docstring) before the interrupt propagates.
        """
        losses: list[float] = []
        epochs, max_steps = self.cfg.optim.epochs, self.cfg.max_steps
        try:
            if max_steps is not None and self.optimizer_steps >= max_steps and self.epoch < epochs \
                    and self.step < self.steps_per_epoch * self.cfg.accum_iter:  # else: evaluate first
                if self.ctx.is_main:
                    log.warning("train.max_steps=%d is reached already: %s stands at %d optimizer steps (%s); "
                                "nothing to do. Raise train.max_steps (or set it to null) to train further",
                                max_steps, self.output_dir / ckpt.LAST, self.optimizer_steps, self._where())
                result = self._result("stopped", losses)
            else:
                result = self._fit(losses)
        except KeyboardInterrupt:
            self._save_on_interrupt()
            raise
        finally:
            self.logger.close()
        barrier()  # not after an error: the other processes may be gone
        return result

    def _fit(self, losses: list[float]) -> TrainResult:
        epochs = self.cfg.optim.epochs
        while self.epoch < epochs:
            if self._train_epoch(self.epoch, losses):
                return self._result("stopped", losses)
            self._end_of_epoch()
            if self.cfg.max_steps is not None and self.optimizer_steps >= self.cfg.max_steps \
                    and self.epoch < epochs:
                return self._result("stopped", losses)
        self._save_final()
        return self._result("finished", losses)

    def _result(self, status: str, losses: list[float]) -> TrainResult:
        return TrainResult(status=status, epoch=self.epoch, optimizer_steps=self.optimizer_steps,
                           best_test_loss=self.best_test_loss, step_losses=losses, test=self.last_test)

    def _train_epoch(self, epoch: int, losses: list[float]) -> bool:
        """Train ``epoch`` from ``self.step``; True if stopped early by ``max_steps``."""
        cfg, accum = self.cfg, self.cfg.accum_iter
        if self.step % accum:  # _resume refuses such positions; a window must start at self.step
            raise InputError(f"cannot start an accumulation window of {accum} at batch {self.step}")
        self.model.train()
        self.train_set.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(self.step)
        n_batches = len(self.sampler)
        usable = self.steps_per_epoch * accum  # micro-batches that reach an optimizer step
        bar = tqdm(total=usable, initial=self.step, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", unit="batch",
                   dynamic_ncols=True, disable=not (self.ctx.is_main and cfg.progress))
        with contextlib.closing(bar):
            return self._train_window_loop(epoch, losses, bar, n_batches, usable)

    def _train_window_loop(self, epoch: int, losses: list[float], bar: tqdm, n_batches: int, usable: int) -> bool:
        cfg, accum = self.cfg, self.cfg.accum_iter
        window: dict[str, float] = {}  # sums over the window's micro-batches: loss and its components
        lr = math.nan
        self.optimizer.zero_grad(set_to_none=True)
        loader = self._loader(self.train_set, self.sampler)
        for step, batch in zip(range(self.step, usable), loader):
            epoch_f = epoch + step / n_batches
            if step % accum == 0:
                lr = self._set_lr(epoch_f)
            update = (step + 1) % accum == 0
            sync = nullcontext() if update or not self.ctx.distributed else self.model.no_sync()
            with sync:
                loss, details = self._forward_loss(self.model, batch, self.train_criterion)
                if any_across_ranks(~torch.isfinite(loss)):  # every rank stops here, not only this one
                    raise Align3RError(f"the training loss is not finite at epoch {epoch_f:.4f} (this process: "
                                       f"{float(loss.detach())}): lower the learning rate or check the data (log: "
                                       f"{self.logger.path}); the run resumes from {self.output_dir / ckpt.LAST}")
                self.scaler.scale(loss / accum).backward()
            for name, value in {"loss": float(loss.detach()), **details}.items():
                window[name] = window.get(name, 0.0) + value
            bar.update(1)
            if not update:
                continue
            with sigint_deferred():  # the step and the position move together, or not at all
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.optimizer_steps += 1
                self.step = step + 1
                self.position_rng = self._capture_rng()
            means = {name: total / accum for name, total in window.items()}  # the window's mean, each value
            window = {}
            losses.append(means["loss"])
            bar.set_postfix(loss=f"{means['loss']:.4f}", lr=f"{lr:.2e}")
            if cfg.print_freq and self.optimizer_steps % cfg.print_freq == 0:
                means = means_across_ranks(means)  # a collective: every rank logs at the same steps
                step_loss = means.pop("loss")
                self.logger.record("train", epoch_f, {"loss": step_loss, "lr": lr, **means})
                if self.ctx.is_main and not cfg.progress:
                    log.info("step %d (%s): loss %.4f, lr %.2e", self.optimizer_steps, self._where(), step_loss, lr)
            stop = cfg.max_steps is not None and self.optimizer_steps >= cfg.max_steps
            if self.step < usable and (stop or (cfg.save_every_steps and self.optimizer_steps % cfg.save_every_steps
                                                == 0)):
                self._save(ckpt.LAST)
            if stop and self.step < usable:
                return True
        return False

    def _end_of_epoch(self) -> None:
        """Evaluate, advance the position to the next epoch, write the epoch's checkpoints."""
        finished = self.epoch + 1
        cfg = self.cfg
        new_best, best_loss = False, self.best_test_loss
        if self.test_sets and cfg.eval_freq and finished % cfg.eval_freq == 0:
            self.last_test = self.evaluate(finished)
            best_here = min(stats["loss_med"] for stats in self.last_test.values())
            # the reference's rule: any test set's median below the best so far
            new_best = best_here < self.best_test_loss
            best_loss = min(self.best_test_loss, best_here)
        names = []
        if (cfg.save_freq and finished % cfg.save_freq == 0) or finished == cfg.optim.epochs \
                or (cfg.max_steps is not None and self.optimizer_steps >= cfg.max_steps):
            names.append(ckpt.LAST)
        if new_best:
            names.append(ckpt.BEST)
        if cfg.keep_freq and finished % cfg.keep_freq == 0:
            names.append(ckpt.kept_name(finished))
        with sigint_deferred():  # an interrupt here would lose this epoch's best / kept checkpoints
            self.best_test_loss = best_loss
            self.epoch, self.step = finished, 0
            self.position_rng = self._capture_rng()
            self._save(*names)

    @torch.no_grad()
    def evaluate(self, epoch: int) -> dict[str, dict[str, float]]:
        """Median and mean test loss per test set, pooled over all ranks' batches."""
        self.net.eval()
        results = {}
        batch_size = self.cfg.test_batch_size or self.cfg.batch_size
        for name, dataset in self.test_sets.items():
            dataset.set_epoch(epoch)
            sampler = SequentialBatchSampler(len(dataset), batch_size, self.ctx.world_size, self.ctx.rank)
            values = [float(self._forward_loss(self.net, batch, self.test_criterion)[0])
                      for batch in tqdm(self._loader(dataset, sampler), desc=f"test {name}", unit="batch",
                                        disable=not (self.ctx.is_main and self.cfg.progress), leave=False)]
            values = all_gather_floats(values)
            results[name] = {"loss_med": lower_median(values), "loss_avg": sum(values) / len(values)}
            self.logger.record("test", float(epoch), {f"{name}_{k}": v for k, v in results[name].items()})
            if self.ctx.is_main:
                log.info("test %s after epoch %d/%d: median loss %.4f, mean %.4f (%d batches)", name, epoch,
                         self.cfg.optim.epochs, results[name]["loss_med"], results[name]["loss_avg"], len(values))
        self.net.train()
        return results
