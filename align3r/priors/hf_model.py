"""The common base of the ``transformers`` depth priors (Depth Pro, Depth Anything V2)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from align3r.errors import InputError
from align3r.priors.base import (
    PriorSource,
    check_focals,
    check_names,
    dtype_name,
    resolve_device,
    resolve_dtype,
    same_size_batches,
)
from align3r.priors.hf import (
    ResolvedModel,
    load_pretrained,
    load_processor,
    resolve_model,
    weights_fingerprint,
)
from align3r.priors.types import DepthPrior


class HFDepthModel(PriorSource):
    """Common machinery of the ``transformers`` depth priors: lazy loading (the weights are read
    only when a frame actually needs computing), one device and dtype chosen at construction,
    same-size batching and a progress bar. Subclasses implement :meth:`_infer_batch`."""

    #: the ``transformers`` class whose ``from_pretrained`` loads the weights
    model_class_name: str = ""
    #: the ``model_type`` its config.json must declare
    model_type: str = ""
    #: what the progress bar says
    label: str = ""
    #: bumped when our post-processing changes, so cached results are recomputed
    formula_version: int = 1

    def __init__(self, model: str, *, revision: str | None = None, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, batch_size: int | None = None,
                 cache_dir: str | Path | None = None, local_files_only: bool | None = None,
                 progress: bool = True) -> None:
        self.model_name = model
        self.revision = revision
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size if batch_size is not None else (4 if self.device.type == "cuda" else 1)
        if self.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {self.batch_size}")
        self.cache_dir = cache_dir
        self.local_files_only = local_files_only
        self.progress = progress
        self._resolved: ResolvedModel | None = None
        self._model: torch.nn.Module | None = None
        self._processor = None

    @classmethod
    def from_loaded(cls, model: torch.nn.Module, processor, *, label: str = "in-memory", **settings):
        """A prior around a model and processor already in memory (e.g. built from a config).

        The model is moved to the prior's device and dtype; its identity (for the cache) is a
        fingerprint of its weights, so a different model never reads another's cached priors."""
        prior = cls(label, **settings)
        prior._resolved = ResolvedModel(label, None, f"memory:{weights_fingerprint(model)}")
        prior._processor = processor
        prior._model = model.to(device=prior.device, dtype=prior.dtype).eval()
        prior._check_model(prior._model)
        return prior

    @property
    def resolved(self) -> ResolvedModel:
        if self._resolved is None:
            self._resolved = resolve_model(self.model_name, self.revision, self.cache_dir, self.local_files_only)
        return self._resolved

    @property
    def identity(self) -> str:
        return (f"{self.name}/v{self.formula_version}|{self.resolved.identity}|{dtype_name(self.dtype)}"
                f"{self._settings_identity()}")

    def _settings_identity(self) -> str:
        """Extra settings that change the output (subclasses append ``|key=value``)."""
        return ""

    @property
    def source(self) -> str:
        """What goes into :attr:`DepthPrior.source`: the Hub id@commit or the folder."""
        resolved = self.resolved
        return resolved.location if resolved.is_local else resolved.identity

    def load(self) -> None:
        """Load the weights and processor now (otherwise done on the first frame to compute)."""
        if self._model is not None:
            return
        import transformers

        model_class = getattr(transformers, self.model_class_name)
        self._processor = self._load_processor()
        self._model = load_pretrained(model_class, self.resolved, model_type=self.model_type, dtype=self.dtype,
                                      device=self.device, cache_dir=self.cache_dir,
                                      local_files_only=self.local_files_only)
        self._check_model(self._model)

    def _load_processor(self):
        return load_processor(self.resolved, cache_dir=self.cache_dir, local_files_only=self.local_files_only)

    def _check_model(self, model: torch.nn.Module) -> None:
        """Raise :class:`CheckpointError` if the loaded model cannot serve as this prior."""

    @property
    def model(self) -> torch.nn.Module:
        self.load()
        return self._model

    @property
    def processor(self):
        self.load()
        return self._processor

    def predict_iter(self, images, focal_px=None, frame_names=None, frame_indices=None) -> Iterator[DepthPrior]:
        focals = check_focals(focal_px, len(images))
        check_names(frame_names, len(images))
        with tqdm(total=len(images), desc=self.label or self.name, unit="frame", disable=not self.progress,
                  leave=False) as bar:
            for indices, frames in same_size_batches(images, self.batch_size):
                # decoders may hand out read-only arrays, which torch.from_numpy warns about
                frames = [f if f.flags.writeable else f.copy() for f in frames]
                with torch.inference_mode():
                    results = self._infer_batch(frames, [focals[i] for i in indices])
                bar.update(len(frames))
                yield from results

    @abstractmethod
    def _infer_batch(self, frames: list[np.ndarray], focals: list[float | None]) -> list[DepthPrior]:
        """Priors for frames of one size (uint8 (H, W, 3) each)."""
