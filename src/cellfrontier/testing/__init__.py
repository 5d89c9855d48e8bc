"""Reference workloads and helpers for testing your own jobs and trackers against known answers.

Each module is imported on its own; README.md ("Testing your own jobs") says what each holds.
"""
