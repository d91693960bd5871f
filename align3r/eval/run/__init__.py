"""Benchmark runs: one method on one dataset, sequence by sequence, resumable and shardable.

>>> from align3r.eval.run import (DatasetSpec, EvalSettings, Experiment, Runtime,
...                               aggregate_experiment, run_experiment)
>>> exp = Experiment("mine/sintel", DatasetSpec("sintel", "data/MPI-Sintel"),
...                  EvalSettings(task="depth", crop=False, graph="grouped-depth-test"))  # doctest: +SKIP
>>> run_experiment(exp, Runtime(results="results"))                                      # doctest: +SKIP
>>> aggregate_experiment(exp, Runtime(results="results"))["metrics"]                      # doctest: +SKIP

- :mod:`~align3r.eval.run.settings` — ``EvalSettings``, ``DatasetSpec``, ``Experiment``, ``Runtime``
- :mod:`~align3r.eval.run.sequence` — one sequence: frames → priors → views → stages → metrics → record
- :mod:`~align3r.eval.run.stages` — the protocol's pair graph, inference, flow, alignment
- :mod:`~align3r.eval.run.priors` — official prior caches or computed priors
- :mod:`~align3r.eval.run.results` — result files, resume, summaries
- :mod:`~align3r.eval.run.runner` — the per-process loop, sharding, aggregation

``align3r eval`` (``align3r/commands/eval.py``) builds these from the Hydra configs;
``align3r.eval.tables`` turns summaries into the paper's tables.
"""

from align3r.eval.run.results import COST_KEYS, DEPTH_KEYS, POSE_KEYS, result_path, summarise
from align3r.eval.run.runner import (
    ExperimentResults,
    NetworkCache,
    PriorModels,
    RunReport,
    Shard,
    aggregate_experiment,
    collect_experiment,
    plan_experiment,
    run_experiment,
    run_sequences,
    shard_device,
    wait_for_results,
    write_experiment_results,
)
from align3r.eval.run.settings import DatasetSpec, EvalSettings, Experiment, Runtime

__all__ = [
    "COST_KEYS",
    "DEPTH_KEYS",
    "POSE_KEYS",
    "DatasetSpec",
    "EvalSettings",
    "Experiment",
    "ExperimentResults",
    "NetworkCache",
    "PriorModels",
    "RunReport",
    "Runtime",
    "Shard",
    "aggregate_experiment",
    "collect_experiment",
    "plan_experiment",
    "result_path",
    "run_experiment",
    "run_sequences",
    "shard_device",
    "summarise",
    "wait_for_results",
    "write_experiment_results",
]
