"""Benchmark runs: one method on one dataset, sequence by sequence, resumable and shardable.

>>> from align3r.eval.run import (DatasetSpec, EvalSettings, Experiment, Runtime,
...                               aggregate_experiment, run_experiment)
>>> exp = Experiment("mine/sintel", DatasetSpec("sintel", "data/MPI-Sintel"),
...                  EvalSettings(task="depth", crop=False, graph="grouped-depth-test"))  # doctest: +SKIP
>>> run_experiment(exp, Runtime(results="results"))                                      # doctest: +SKIP
>>> aggregate_experiment(exp, Runtime(results="results"))["metrics"]                      # doctest: +SKIP

- :mod:`~align3r.eval.run.settings` — ``EvalSettings``, ``DatasetSpec``, ``Experiment``, ``Runtime``
- :mod:`~align3r.eval.run.experiments` — a config (composed table / single run) → runtime and plan
- :mod:`~align3r.eval.run.sequence` — one sequence: frames → priors → views → stages → metrics → record
- :mod:`~align3r.eval.run.stages` — the protocol's pair graph, inference, flow, alignment
- :mod:`~align3r.eval.run.priors` — official prior caches or computed priors
- :mod:`~align3r.eval.run.results` — result files, resume, summaries
- :mod:`~align3r.eval.run.runner` — planning sequences and the per-process loop
- :mod:`~align3r.eval.run.shards` — sharding over processes, rank 0 waiting for the others
- :mod:`~align3r.eval.run.aggregate` — scanning result files, stale records, experiment summaries
- :mod:`~align3r.eval.run.table` — a whole table: run the plan, aggregate, write the table

``align3r eval`` (``align3r/commands/eval.py``) only composes the Hydra configs and calls these;
from Python, ``run_table(*table_plan(config, name), runtime)`` with a composed config, or a plan
built by hand. ``align3r.eval.tables`` turns summaries into the paper's tables.
"""

from align3r.eval.run.aggregate import (
    ExperimentResults,
    PlanSummaries,
    aggregate_experiment,
    aggregate_from_records,
    collect_experiment,
    other_networks,
    write_experiment_results,
)
from align3r.eval.run.experiments import (
    build_experiment,
    describe_plan,
    model_label,
    resolve_prior,
    runtime_from_config,
    shadowed_protocol_overrides,
    single_plan,
    table_plan,
)
from align3r.eval.run.results import COST_KEYS, DEPTH_KEYS, POSE_KEYS, result_path, summarise
from align3r.eval.run.runner import (
    NetworkCache,
    PriorModels,
    RunReport,
    plan_experiment,
    run_experiment,
    run_sequences,
)
from align3r.eval.run.settings import DatasetSpec, EvalSettings, Experiment, Runtime
from align3r.eval.run.shards import wait_for_results
from align3r.eval.run.table import TableRun, run_table
from align3r.sharding import Shard

__all__ = [
    "COST_KEYS",
    "DEPTH_KEYS",
    "POSE_KEYS",
    "DatasetSpec",
    "EvalSettings",
    "Experiment",
    "ExperimentResults",
    "NetworkCache",
    "PlanSummaries",
    "PriorModels",
    "RunReport",
    "Runtime",
    "Shard",
    "TableRun",
    "aggregate_experiment",
    "aggregate_from_records",
    "build_experiment",
    "collect_experiment",
    "describe_plan",
    "model_label",
    "other_networks",
    "plan_experiment",
    "resolve_prior",
    "result_path",
    "run_experiment",
    "run_sequences",
    "run_table",
    "runtime_from_config",
    "shadowed_protocol_overrides",
    "single_plan",
    "summarise",
    "table_plan",
    "wait_for_results",
    "write_experiment_results",
]
