"""Run a whole generation job over the tracker: ``Job(graph, generators, num_records).run()``.

Modules, one idea each: :mod:`~cellfrontier.job.job` (the public ``Job`` and ``JobResult``),
:mod:`~cellfrontier.job.generators` (resolving and classifying generators, ``blocking``),
:mod:`~cellfrontier.job.kernels` (generated inline loops), :mod:`~cellfrontier.job.buffers`
(per-row-group values), :mod:`~cellfrontier.job.admission` (row-group admission policies),
:mod:`~cellfrontier.job.runner` (the scheduling loop of one shard),
:mod:`~cellfrontier.job.execution` (running generator calls: inline, async, blocking, retries),
:mod:`~cellfrontier.job.shard_store` (resuming a shard from ``output_dir`` and checkpointing it),
:mod:`~cellfrontier.job.output` (directory layout and Parquet files),
:mod:`~cellfrontier.job.manifest` (which job a directory holds),
:mod:`~cellfrontier.job.state` (an attempt's checkpoint of a shard),
:mod:`~cellfrontier.job.fencing` (attempt epochs: which run of a shard may write),
:mod:`~cellfrontier.job.sharding` (shards on disk, combined results, whole-job state),
:mod:`~cellfrontier.job.local_run` (running the shards in this process),
:mod:`~cellfrontier.job.cluster` (running them on a Dask cluster), :mod:`~cellfrontier.job.failures`
(retries and failure records), :mod:`~cellfrontier.job.interrupts` (Ctrl-C / SIGTERM),
:mod:`~cellfrontier.job.progress` (progress value, bar, log lines),
:mod:`~cellfrontier.job.errors`.
"""

from cellfrontier.job.admission import (
    AdmissionPolicy,
    AdmissionView,
    CapsAdmission,
    FixedAdmission,
    MemoryBoundAdmission,
)
from cellfrontier.job.errors import (
    ErrorRateExceededError,
    GeneratorMappingError,
    GeneratorOutputError,
    JobCancelledError,
    JobInterruptedError,
    MissingDependencyError,
    OutputDirError,
    RunningLoopError,
    ShardLostError,
    StaleShardError,
)
from cellfrontier.job.failures import GeneratorFailure
from cellfrontier.job.generators import blocking
from cellfrontier.job.job import Job, JobResult
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.progress import JobProgress
from cellfrontier.job.sharding import ShardSummary, latest_checkpoint, merged_job_state, shard_states
from cellfrontier.job.state import ShardCheckpoint, load_checkpoint

__all__ = [
    "AdmissionPolicy",
    "AdmissionView",
    "CapsAdmission",
    "ErrorRateExceededError",
    "FixedAdmission",
    "GeneratorFailure",
    "GeneratorMappingError",
    "GeneratorOutputError",
    "Job",
    "JobCancelledError",
    "JobInterruptedError",
    "JobProgress",
    "JobResult",
    "MemoryBoundAdmission",
    "MissingDependencyError",
    "OutputDirError",
    "OutputLayout",
    "RunningLoopError",
    "ShardCheckpoint",
    "ShardLostError",
    "ShardSummary",
    "StaleShardError",
    "blocking",
    "latest_checkpoint",
    "load_checkpoint",
    "merged_job_state",
    "shard_states",
]
