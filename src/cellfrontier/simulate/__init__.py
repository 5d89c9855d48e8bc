"""Simulation and benchmark tooling: reference workloads, the driver and the ``simulate`` command.

Nothing here is part of the tracker; it drives the tracker (and the alternatives it is
compared with) through their public APIs only.
"""
