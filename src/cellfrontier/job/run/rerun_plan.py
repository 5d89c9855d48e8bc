"""What a run of a job on its ``output_dir`` will do, told before any work: :func:`plan_rerun`.

The plan compares the job with the directory's current job version
(:mod:`cellfrontier.job.store.generations`), column by column, and counts the work from the
row-group files' footers (:mod:`cellfrontier.job.store.group_reuse`, the same decisions a run
makes), never reading values and never writing.  Its cell count is exact for the written
groups and for groups not started; work a checkpoint of an interrupted run holds is counted as
still to do (a resume does less).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cellfrontier.job.output import OutputLayout
from cellfrontier.job.spec import JobSpec
from cellfrontier.job.store.generations import job_version, planned_version
from cellfrontier.job.store.group_files import read_group_stamp
from cellfrontier.job.store.group_reuse import plan_group_reuse
from cellfrontier.job.store.shard_store import current_columns

__all__ = ["ColumnChange", "RerunPlan", "plan_rerun"]


@dataclass(frozen=True)
class ColumnChange:
    """A column the run computes again, and why.

    ``reason`` is ``"changed"`` (its generator, strategy or outputs), ``"upstream changed"``,
    ``"volatile"`` or ``"python version"`` (its print is its bytecode, which the recorded
    Python's differs from: the code may be unchanged; pin it with ``version=``).
    """

    column: str
    reason: str


@dataclass(frozen=True)
class RerunPlan:
    """What a run will keep, compute again, add and remove, and how much it will compute."""

    output_dir: Path
    generation: int | None
    """The directory's current job version (None: none yet)."""
    run_generation: int
    """The job version the run works on (the current one when it resumes)."""
    resumes: bool
    """The job is the current version: the run resumes (or finds everything done)."""
    kept: tuple[str, ...]
    recomputed: tuple[ColumnChange, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    rows_before: int
    rows_added: int
    groups_kept: int
    """Written row groups whose files stand as they are."""
    groups_upgraded: int
    """Written row groups whose files are rewritten (columns computed, added, removed, rows added)."""
    groups_new: int
    """Row groups without a file yet."""
    cells_kept: int
    """Cells of kept columns that upgraded groups read back instead of computing."""
    tasks_to_compute: int
    """Cells and full-column batches the run will compute (see the module doc)."""
    python_versions: tuple[str, str] | None = None
    """``(recorded, running)`` when they differ."""

    def __str__(self) -> str:
        lines = [f"output_dir {self.output_dir}"]
        if self.generation is None:
            lines.append(f"  new job version {self.run_generation} (nothing to reuse)")
        elif self.resumes:
            lines.append(f"  resumes job version {self.run_generation} (the job is unchanged)")
        else:
            lines.append(f"  job version {self.generation} -> {self.run_generation}")
        lines.append(f"  kept:       {', '.join(self.kept) or '-'}")
        changes = ", ".join(f"{c.column} ({c.reason})" for c in self.recomputed)
        lines.append(f"  recomputed: {changes or '-'}")
        lines.append(f"  added:      {', '.join(self.added) or '-'}")
        lines.append(f"  removed:    {', '.join(self.removed) or '-'}")
        if self.rows_added:
            lines.append(f"  rows:       {self.rows_before:,} -> {self.rows_before + self.rows_added:,}")
        groups = f"{self.groups_kept:,} kept, {self.groups_upgraded:,} rewritten, {self.groups_new:,} new"
        lines.append(f"  row groups: {groups}")
        lines.append(
            f"  to compute: {self.tasks_to_compute:,} tasks ({self.cells_kept:,} kept cells read back)"
        )
        if self.python_versions is not None:
            recorded, running = self.python_versions
            lines.append(
                f"  note: written under Python {recorded}, running {running}: columns fingerprinted by "
                "their bytecode are computed again; pin them with cellfrontier.generator(fn, version=...)"
            )
        return "\n".join(lines)


def plan_rerun(spec: JobSpec) -> RerunPlan:
    """What a run of *spec* on its ``output_dir`` will do (module doc); refuses what a run would refuse."""
    assert spec.output_dir is not None
    current, record = planned_version(spec)
    resumes = current is not None and record is current
    layout = OutputLayout(Path(spec.output_dir))
    version = job_version(layout, record)
    columns = current_columns(spec, version)
    names = [c.name for c in columns]
    old_columns = dict(current["columns"]) if current is not None else {}
    old_prints = dict(current["fingerprints"]) if current is not None else {}
    running = str(record["python_version"])
    recorded = str(current.get("python_version", running)) if current is not None else running
    kept: list[str] = []
    recomputed: list[ColumnChange] = []
    added: list[str] = []
    new_columns = record["columns"]
    changed: set[str] = set()
    for name in names:
        if name not in old_columns:
            added.append(name)
            changed.add(name)
            continue
        if old_prints.get(name) == version.fingerprints[name]:
            kept.append(name)
            continue
        changed.add(name)
        mine, theirs = new_columns[name], old_columns[name]
        if mine["volatile"]:
            reason = "volatile"
        elif any(mine[k] != theirs.get(k) for k in ("print", "strategy", "outputs", "upstream")):
            same_code_source = mine["print_source"] == "code" == theirs.get("print_source")
            reason = "python version" if same_code_source and recorded != running else "changed"
        else:
            reason = "upstream changed"
        recomputed.append(ColumnChange(name, reason))
    removed = tuple(sorted(name for name in old_columns if name not in new_columns))

    groups_kept = groups_upgraded = groups_new = cells_kept = tasks = 0
    buffer_size = spec.buffer_size
    written = layout.written_groups(0, spec.num_row_groups)
    for rg in range(spec.num_row_groups):
        size = min(buffer_size, spec.num_records - rg * buffer_size)
        stamp = (
            read_group_stamp(written[rg], legacy_size=size, legacy_base=rg * buffer_size)
            if rg in written
            else None
        )
        if stamp is None:
            groups_new += 1
            tasks += spec.estimate_tasks(size, 1)
            continue
        reuse = plan_group_reuse(stamp, columns, size, legacy=version.legacy)
        if reuse.settled:
            groups_kept += 1
            continue
        groups_upgraded += 1
        tasks += reuse.cells_to_compute(columns)
        cells_kept += len(reuse.kept) * len(reuse.stored_rows)
    rows_before = int(current["num_records"]) if current is not None else 0
    return RerunPlan(
        output_dir=layout.root,
        generation=int(current["generation"]) if current is not None else None,
        run_generation=version.generation,
        resumes=resumes,
        kept=tuple(kept),
        recomputed=tuple(recomputed),
        added=tuple(added),
        removed=removed,
        rows_before=rows_before,
        rows_added=max(0, spec.num_records - rows_before) if current is not None else spec.num_records,
        groups_kept=groups_kept,
        groups_upgraded=groups_upgraded,
        groups_new=groups_new,
        cells_kept=cells_kept,
        tasks_to_compute=tasks,
        python_versions=(recorded, running) if recorded != running else None,
    )
