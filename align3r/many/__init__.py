"""Many videos or image folders in one run (``align3r infer SOURCE... --out DIR``): the sources
shared over ``torchrun`` processes, each source's outputs in ``DIR/<name>/``, a merged summary.

- ``reconstruct_many`` (``align3r.many.run``): yields each source's ``SourceRun``.
- ``align3r.many.records``: per-source records, ``summary.json`` / ``summary.csv``, the table.
"""

from align3r.many.run import PlannedSource, SourceRun, plan_sources, reconstruct_many, single_source

__all__ = ["PlannedSource", "SourceRun", "plan_sources", "reconstruct_many", "single_source"]
