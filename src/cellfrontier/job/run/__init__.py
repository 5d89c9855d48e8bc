"""Running a job's shards: cutting the job into shards, running them here or on a Dask cluster.

Also the views over many shards: one progress view, one combined result, the whole job's
tracker state.
"""
