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
:mod:`~cellfrontier.job.state` (a shard's checkpoint), :mod:`~cellfrontier.job.failures`
(retries and failure records), :mod:`~cellfrontier.job.interrupts` (Ctrl-C / SIGTERM),
:mod:`~cellfrontier.job.progress` (progress value, bar, log lines),
:mod:`~cellfrontier.job.files` (durable file replacement), :mod:`~cellfrontier.job.errors`.
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
    JobInterruptedError,
    MissingDependencyError,
    OutputDirError,
    RunningLoopError,
    StaleShardError,
)
from cellfrontier.job.failures import GeneratorFailure
from cellfrontier.job.generators import blocking
from cellfrontier.job.job import Job, JobResult
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.progress import JobProgress
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
    "JobInterruptedError",
    "JobProgress",
    "JobResult",
    "MemoryBoundAdmission",
    "MissingDependencyError",
    "OutputDirError",
    "OutputLayout",
    "RunningLoopError",
    "ShardCheckpoint",
    "StaleShardError",
    "blocking",
    "load_checkpoint",
]
