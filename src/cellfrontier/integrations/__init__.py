"""Adapters that plug cellfrontier into other schedulers (imported on demand)."""
