"""Reference workloads and the drivers that run them (``cellfrontier simulate``)."""
