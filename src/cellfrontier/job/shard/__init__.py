"""One shard's scheduling loop: admission, generator calls, buffers, retries, writing finished groups.

Takes a :class:`~cellfrontier.job.spec.JobSpec` and a range of row groups; stores through
:mod:`cellfrontier.job.store`; knows nothing of other shards.
"""
