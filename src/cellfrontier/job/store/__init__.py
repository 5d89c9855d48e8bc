"""What a shard keeps on disk beside the dataset: the manifest, shard directories, claims, checkpoints.

Everything here is written so that a crash at any moment leaves a state a later attempt
resumes from, and so that a stale attempt can never overwrite a newer one's work.
"""
