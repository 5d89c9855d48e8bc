"""Tools for testing code that uses cellfrontier: reference workloads with known answers, a fake model.

Each module is imported on its own; README.md ("Testing your own jobs") says what each holds.
"""
