"""The manifest: which job an output directory holds.

Written once, when a job first uses the directory, as ``cellfrontier-job.json``.  It
fingerprints what decides the dataset's content and layout: the graph (columns, strategies,
edges, aliases), which generator produces each column (``module:qualname``), ``num_records``
and ``buffer_size``.  A later run on the directory must match it, so a changed graph or
generator set cannot resume (and silently mix) another job's rows.  Concurrency, retries and
admission settings are not part of it: they change how a job runs, not what it writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, BinaryIO

from cellfrontier._durable import TEMP_SUFFIX, replace_atomically
from cellfrontier.job.errors import OutputDirError
from cellfrontier.job.output import OutputLayout
from cellfrontier.job.spec import JobSpec

__all__ = ["MANIFEST_FORMAT", "job_digest", "job_fingerprint", "prepare_output_dir"]

MANIFEST_FORMAT = "cellfrontier-job"
MANIFEST_VERSION = 1


def job_fingerprint(spec: JobSpec) -> dict[str, Any]:
    """The manifest's content for *spec* (order-independent where the graph's meaning is)."""
    signature = spec.graph.signature()
    identities = {column.name: column.identity for column in spec.columns}
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "graph": {
            "columns": sorted(signature["columns"]),
            "edges": signature["edges"],
            "side_effects": signature["side_effects"],
        },
        "generators": dict(sorted(identities.items())),
        "num_records": spec.num_records,
        "buffer_size": spec.buffer_size,
    }


def job_digest(fingerprint: Mapping[str, Any]) -> str:
    """A short stable digest of a fingerprint, stamped on checkpoints to tie them to their job."""
    canonical = json.dumps(fingerprint, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()[:16]


def _differences(found: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    what = {
        "graph": "the graph (columns, strategies, edges or side-effect aliases)",
        "generators": "the generators",
        "num_records": "num_records",
        "buffer_size": "buffer_size",
        "version": "the manifest version",
    }
    out = []
    for key, label in what.items():
        if found.get(key) != expected.get(key):
            if key == "generators":
                a, b = found.get(key) or {}, expected.get(key) or {}
                changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                details = ", ".join(f"{k!r}: {a.get(k)!r} -> {b.get(k)!r}" for k in changed[:5])
                out.append(f"{label} ({details})")
            elif key in ("num_records", "buffer_size"):
                out.append(f"{label} ({found.get(key)!r} -> {expected.get(key)!r})")
            else:
                out.append(label)
    return out


def read_manifest(layout: OutputLayout) -> dict[str, Any] | None:
    try:
        text = layout.manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise OutputDirError(f"{layout.manifest_path} is not a readable job manifest") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise OutputDirError(f"{layout.manifest_path} is not a cellfrontier job manifest")
    return data


def prepare_output_dir(layout: OutputLayout, fingerprint: Mapping[str, Any]) -> bool:
    """Create the directory and its manifest, or check that it holds this job.

    Returns True when the directory already held this job (the run may resume).  Refuses a
    directory that holds another job, and a non-empty directory without a manifest (it is not
    a job's, and the job will not write into someone else's files).  Several shards of one job
    may call this at once: each writes the same manifest atomically.
    """
    root = layout.root
    if root.exists() and not root.is_dir():
        raise OutputDirError(f"output_dir {str(root)!r} exists and is not a directory")
    found = read_manifest(layout)
    if found is None:
        if root.is_dir():  # a manifest write killed midway leaves only its temporary file
            for leftover in root.glob(f".{layout.manifest_path.name}.*{TEMP_SUFFIX}"):
                leftover.unlink(missing_ok=True)
        if root.is_dir() and any(root.iterdir()):
            raise OutputDirError(
                f"output_dir {str(root)!r} is not empty and holds no cellfrontier job manifest; "
                "give an empty or new directory"
            )
        layout.create()
        payload = json.dumps(fingerprint, indent=2, sort_keys=True).encode("utf-8") + b"\n"

        def write(handle: BinaryIO) -> None:
            handle.write(payload)

        replace_atomically(layout.manifest_path, write)
        return False
    differences = _differences(found, fingerprint)
    if differences:
        raise OutputDirError(
            f"output_dir {str(root)!r} holds a different job: it differs in "
            + "; ".join(differences)
            + ". Resume it with the same job, or use another directory"
        )
    layout.create()
    return True
