"""Run a whole generation job over the tracker: ``Job(graph, generators, num_records).run()``.

This module holds the package's public names only.  ``Job`` (the API) builds a frozen
``JobSpec`` and hands it down through three layers, each importing only those below it:
``run`` (many shards, in this process or on a Dask cluster), ``shard`` (one shard's
scheduling loop) and ``store`` (what a shard keeps on disk to resume and to fence stale
attempts).  Beneath them lie the values every layer shares: the spec and its columns, the
result, the dataset's files (``output``: written by a shard, read back by the result) and
progress (a shard reports it, a run of many shards sums it).  The loop of one shard applies
the collector's settings and the stop signals itself, so those live in ``shard``.
"""

from cellfrontier.job.columns import blocking, generator
from cellfrontier.job.errors import (
    ErrorRateExceededError,
    GeneratorMappingError,
    GeneratorOutputError,
    GeneratorTimeoutError,
    JobCancelledError,
    JobInterruptedError,
    MissingDependencyError,
    OutputDirError,
    RerunRefusedError,
    RunningLoopError,
    ShardLostError,
    StaleShardError,
)
from cellfrontier.job.job import Job
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.progress import JobProgress
from cellfrontier.job.result import GeneratorFailure, JobResult, ShardSummary
from cellfrontier.job.run.preview import JobPreview
from cellfrontier.job.run.rerun_plan import ColumnChange, RerunPlan
from cellfrontier.job.run.whole_job import merged_job_state, shard_states
from cellfrontier.job.shard.admission import (
    AdmissionPolicy,
    AdmissionView,
    CapsAdmission,
    FixedAdmission,
    MemoryBoundAdmission,
)
from cellfrontier.job.spec import JobSpec
from cellfrontier.job.status import JobStatus, ShardStatus
from cellfrontier.job.store.shard_checkpoint import ShardCheckpoint, load_checkpoint
from cellfrontier.job.store.shard_dirs import latest_checkpoint
from cellfrontier.job.store.status_reader import read_job_status
from cellfrontier.job.usage import JobUsage

__all__ = [
    "AdmissionPolicy",
    "AdmissionView",
    "CapsAdmission",
    "ColumnChange",
    "ErrorRateExceededError",
    "FixedAdmission",
    "GeneratorFailure",
    "GeneratorMappingError",
    "GeneratorOutputError",
    "GeneratorTimeoutError",
    "Job",
    "JobCancelledError",
    "JobInterruptedError",
    "JobPreview",
    "JobProgress",
    "JobResult",
    "JobSpec",
    "JobStatus",
    "JobUsage",
    "MemoryBoundAdmission",
    "MissingDependencyError",
    "OutputDirError",
    "OutputLayout",
    "RerunPlan",
    "RerunRefusedError",
    "RunningLoopError",
    "ShardCheckpoint",
    "ShardLostError",
    "ShardStatus",
    "ShardSummary",
    "StaleShardError",
    "blocking",
    "generator",
    "latest_checkpoint",
    "load_checkpoint",
    "merged_job_state",
    "read_job_status",
    "shard_states",
]
