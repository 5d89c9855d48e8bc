# cython: language_level=3
# cython: freethreading_compatible=True
"""The compiled core in DataDesigner-compatible mode, for the drop-in backend.

:class:`DataDesignerCore` is a :class:`~cellfrontier._core.TrackerCore` whose frontier
evolves exactly as DataDesigner's own tracker's does (0.9.6, 0.9.7), which re-evaluates readiness at
every event instead of once per task:

* completing a cell or a range re-checks every downstream task, even when the cell or range
  was complete already;
* a dropped row re-checks every full-column task;
* admitting a group (``add_roots``) readies every row of the given columns, roots or not, and
  a full-column column as a distinct ``"from_scratch"`` entry (``SLOT_SCRATCH``) beside its
  ``"batch"`` task;
* a zero-row group admits nothing by itself, a compacted group may be touched again (it
  starts afresh) and compaction takes the caller's word that a group is finished.

The readiness checks themselves are the shared kernels of ``_kernels.pxd``; only the four
event kernels below differ.  Tasks are DataDesigner's own ``Task`` objects, built without
running their constructor and registered under their stable id (``_task_id.pyx``), so that
``unready_ids`` acknowledges the ids a scheduler sends back in O(1) each.
"""

from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyObject_GenericSetAttr
from libc.stdint cimport int64_t, uint64_t

from cellfrontier cimport _kernels as kernels
from cellfrontier._bits cimport (
    SLOT_BATCH,
    SLOT_SCRATCH,
    DeltaLog,
    Graph,
    RowGroup,
    cf_popcount,
    enter,
    full_bit,
    leave,
    ready_bits,
    row_bit,
    set_ready,
    tail_mask,
)
from cellfrontier._groups cimport (
    Group,
    column_id,
    new_group,
    row_group_key,
    row_of,
)
from cellfrontier._core cimport TrackerCore
from cellfrontier._values cimport FrontierDelta, TaskFactory
from cellfrontier.integrations._task_id cimport stable_task_id_of

from cellfrontier.errors import StrategyMismatchError

__all__ = ["REGISTRY_PRUNE_MIN", "DataDesignerCore", "DataDesignerTaskFactory"]

REGISTRY_PRUNE_MIN = 65_536
"""The id registry is pruned of tasks of inactive row groups when it grows past this size and
past twice its size after the previous pruning: amortised O(1) per registered task."""

cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void* op)
    bint PyObject_IS_GC(object op)

cdef str CELL = "cell"
cdef str BATCH = "batch"
cdef str FROM_SCRATCH = "from_scratch"
cdef object BATCH_SLOT = SLOT_BATCH
cdef object SCRATCH_SLOT = SLOT_SCRATCH


# -- the four event kernels of this mode ------------------------------------------------------


cdef void dd_mark_cell(const Graph* graph, RowGroup* g, DeltaLog* log, int c, int64_t r) noexcept nogil:
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w = r >> 6
    cdef uint64_t bit = row_bit(r)
    if not (g.done[c * nw + w] & bit):
        g.done[c * nw + w] |= bit
        g.n_done[c] += 1
        if not (g.dropped[w] & bit):
            g.n_resolved[c] += 1
    kernels.leave_cell(g, log, c, r)
    kernels.visit_downstream(graph, g, log, c, r, NULL, True)


cdef void dd_mark_range(
    const Graph* graph, RowGroup* g, DeltaLog* log, int c, uint64_t* all_rows
) noexcept nogil:
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w
    cdef uint64_t newly
    g.batch_done[c] = 1
    if g.full_ready[c] & full_bit(SLOT_BATCH):
        leave(g, log, c, SLOT_BATCH, 1)
    for w in range(nw):
        all_rows[w] = tail_mask(g.n, w, nw)
        newly = all_rows[w] & ~g.done[c * nw + w]
        g.done[c * nw + w] |= newly
        g.n_done[c] += cf_popcount(newly)
        g.n_resolved[c] += cf_popcount(newly & ~g.dropped[w])
    kernels.visit_downstream(graph, g, log, c, -1, all_rows, True)


cdef void dd_drop_row(const Graph* graph, RowGroup* g, DeltaLog* log, int64_t r) noexcept nogil:
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w = r >> 6
    cdef uint64_t bit = row_bit(r)
    cdef int c
    if not (g.dropped[w] & bit):
        g.dropped[w] |= bit
        g.n_dropped += 1
        for c in range(graph.num_columns):
            if not (g.done[c * nw + w] & bit):
                g.n_resolved[c] += 1
    for c in range(graph.num_columns):
        kernels.leave_cell(g, log, c, r)
    for c in range(graph.num_columns):
        if graph.is_batch[c]:
            kernels.check_batch(graph, g, log, c)


cdef void dd_add_column_tasks(const Graph* graph, RowGroup* g, DeltaLog* log, int c) noexcept nogil:
    cdef Py_ssize_t nw = g.nw
    cdef Py_ssize_t w
    cdef uint64_t cand
    if graph.is_batch[c]:
        if not g.full_ready[c] & full_bit(SLOT_SCRATCH):
            enter(g, log, c, SLOT_SCRATCH, 1)
        return
    for w in range(nw):
        cand = tail_mask(g.n, w, nw) & ~g.ready[c * nw + w]
        if cand:
            enter(g, log, c, 64 * w, cand)


# -- DataDesigner's task objects ----------------------------------------------------------------


cdef class DataDesignerTaskFactory(TaskFactory):
    """Builds instances of a foreign task class (DataDesigner's frozen ``Task`` dataclass).

    An instance is made without running the constructor: its ``__dict__`` is filled directly,
    which is several times cheaper and gives an object equal to one built normally.  Each
    carries its stable id under *id_key* and is registered under it as
    ``id -> (row group, column id, slot)``.  Instances hold names and numbers only, so they
    are taken out of the cyclic garbage collector's view (a scheduler keeps thousands alive).
    """

    cdef object task_class
    cdef str id_key
    cdef dict registry

    def __init__(self, names, task_class, str id_key, dict registry):
        super().__init__(names, [BATCH] * len(names))
        self.task_class = task_class
        self.id_key = id_key
        self.registry = registry

    cdef object build(self, int column, object row_group, int64_t slot):
        cdef str name = self.names[column]
        cdef str task_type
        cdef object row_index, entry_slot
        if slot >= 0:
            task_type = CELL
            row_index = entry_slot = slot  # one int object for the task and its registry entry
        else:
            task_type = FROM_SCRATCH if slot == SLOT_SCRATCH else BATCH
            row_index = None
            entry_slot = SCRATCH_SLOT if slot == SLOT_SCRATCH else BATCH_SLOT
        task_id = stable_task_id_of(name, row_group, row_index, task_type)
        obj = self.task_class.__new__(self.task_class)
        attrs = {"column": name, "row_group": row_group, "row_index": row_index, "task_type": task_type}
        attrs[self.id_key] = task_id
        self.registry[task_id] = (row_group, column, entry_slot)
        PyObject_GenericSetAttr(obj, "__dict__", attrs)
        if PyObject_IS_GC(obj):
            PyObject_GC_UnTrack(<void*>obj)
        return obj


# -- the core -------------------------------------------------------------------------------------


cdef class DataDesignerCore(TrackerCore):
    """A :class:`TrackerCore` with DataDesigner's semantics, tasks and delta type.

    Every mutation returns an instance of *delta_class* made without its constructor, with
    ``__dict__ = {"_core_delta": <FrontierDelta>}``, or *empty_delta* when nothing changed.
    """

    cdef readonly dict registry  # stable id -> (row group, column id, slot)
    cdef object delta_class
    cdef object empty_delta
    cdef Py_ssize_t registry_limit

    def __init__(self, compiled, plan, task_class, delta_class, empty_delta, str id_key):
        super().__init__(compiled, plan)
        self.registry = {}
        self.factory = DataDesignerTaskFactory(self.names, task_class, id_key, self.registry)
        self.delta_class = delta_class
        self.empty_delta = empty_delta
        self.registry_limit = REGISTRY_PRUNE_MIN

    cdef Group _new_group(self, object key, str method):
        # A compacted group starts afresh, and a zero-row group admits nothing by itself.
        return new_group(key, self._plan_size(key, method), self.graph.num_columns)

    # -- this mode's steps of the shared entry points -------------------------------------

    cdef void _mark_cell(self, Group g, int c, int64_t r) noexcept:
        dd_mark_cell(&self.graph, &g.s, &self.log, c, r)

    cdef void _mark_range(self, Group g, int c, uint64_t* scratch) noexcept:
        dd_mark_range(&self.graph, &g.s, &self.log, c, scratch)

    cdef void _drop_row(self, Group g, int64_t r) noexcept:
        dd_drop_row(&self.graph, &g.s, &self.log, r)

    cdef void _admit(self, Group g, int c) noexcept:
        dd_add_column_tasks(&self.graph, &g.s, &self.log, c)

    cdef int _check_admissible(self, int c) except -1:
        return 0  # any column: DataDesigner readies every row of the columns it is given

    cdef object _result(self, Group g):
        """The delta wrapped in DataDesigner's delta class (``empty_delta`` when nothing changed)."""
        cdef FrontierDelta d = self._finish(g)
        if d._count_added == 0 and d._count_removed == 0:
            return self.empty_delta
        obj = self.delta_class.__new__(self.delta_class)
        PyObject_GenericSetAttr(obj, "__dict__", {"_core_delta": d})
        return obj

    def compact(self, row_group):
        """Release an active group's arrays (the caller says it is finished); returns its
        dropped rows, packed little-endian (empty for a group that holds no state)."""
        cdef Group g
        self._enter()
        try:
            g = self.groups.get(row_group_key(self.plan, row_group, "compact_row_group"))
            if g is None:
                return b""
            self._release(g)
            self._prune_heap()
            if len(self.registry) > self.registry_limit:
                self._prune_registry()
            return self.compacted.entries[g.row_group][1]
        finally:
            self._exit()

    cdef void _prune_registry(self):
        """Forget registered tasks of groups that hold no state any more.

        Tasks that were built (listed or in a delta) but never acknowledged stay registered
        until then; this keeps the registry proportional to the active groups.
        """
        groups = self.groups
        # A copy of the entries first: deltas read in other threads register the tasks they
        # build without this core's lock (one dict operation each, which is atomic).
        stale = [
            task_id
            for task_id, entry in list(self.registry.items())
            if type(entry) is not tuple or not entry or entry[0] not in groups
        ]
        for task_id in stale:
            self.registry.pop(task_id, None)
        self.registry_limit = max(REGISTRY_PRUNE_MIN, 2 * len(self.registry))

    # -- the frontier by task ----------------------------------------------------------------

    def add_ready(self, column, row_group, row_index, bint scratch, task_id):
        """Put one task into the frontier and register it under *task_id*; True if it was not
        ready.  *scratch* selects the "from_scratch" entry of a full-column column."""
        cdef int c
        cdef Group g
        cdef int64_t slot
        cdef uint64_t bit = 1
        cdef bint added = False
        self._enter()
        try:
            c = column_id(self.index, self.names, column, "add_ready_tasks")
            g = self._group(row_group, "add_ready_tasks")
            if row_index is None:
                if not self.graph.is_batch[c]:
                    raise StrategyMismatchError(
                        f"add_ready_tasks() got a task for cell_by_cell column {column!r} without a row_index"
                    )
                slot = SLOT_SCRATCH if scratch else SLOT_BATCH
            else:
                if self.graph.is_batch[c]:
                    raise StrategyMismatchError(
                        f"add_ready_tasks() got a task for full_column column {column!r} with a row_index"
                    )
                slot = row_of(g, row_index, "add_ready_tasks")
                bit = row_bit(slot)
            g = self._commit(g)
            if not ready_bits(&g.s, c, slot) & bit:
                set_ready(&g.s, c, slot, bit)
                added = True
            self._push(g)
            self.registry[task_id] = (g.row_group, c, slot)
            return added
        finally:
            self._exit()

    def unready_ids(self, task_ids):
        """Take the tasks registered under *task_ids* out of the registry and the frontier.

        Entries of groups that hold no state any more are dropped silently.  Nothing in the
        registry is trusted: an entry that is not ``(row group, column id, slot)`` of an
        active group is returned, like an unknown id.  Returns the ids not resolved.
        """
        cdef list missing = []
        cdef Group g
        cdef int64_t c, slot
        cdef int column_overflow = 0, slot_overflow = 0
        self._enter()
        try:
            for task_id in task_ids:
                entry = self.registry.pop(task_id, None)
                if type(entry) is not tuple or len(<tuple>entry) != 3:
                    missing.append(task_id)
                    continue
                row_group, column, row = <tuple>entry
                g = self.groups.get(row_group) if type(row_group) is int else None
                if g is None:
                    continue
                if type(column) is not int or type(row) is not int:
                    missing.append(task_id)
                    continue
                c = PyLong_AsLongLongAndOverflow(column, &column_overflow)
                slot = PyLong_AsLongLongAndOverflow(row, &slot_overflow)
                if (
                    column_overflow or slot_overflow or c < 0 or c >= self.graph.num_columns
                    or slot < SLOT_SCRATCH or slot >= g.s.n or (slot < 0) != self.graph.is_batch[c]
                ):
                    missing.append(task_id)
                    continue
                kernels.acknowledge(&g.s, <int>c, slot)
            return missing
        finally:
            self._exit()

    def is_listed(self, column, row_group, row_index, bint scratch):
        """Whether a task the caller checked against the plan is in the frontier."""
        cdef int c
        cdef Group g
        cdef int64_t slot
        self._enter()
        try:
            c = column_id(self.index, self.names, column, "is_frontier_task")
            g = self.groups.get(row_group)
            if g is None:
                return False
            if row_index is None:
                slot = SLOT_SCRATCH if scratch else SLOT_BATCH
                return bool(self.graph.is_batch[c] and ready_bits(&g.s, c, slot))
            if self.graph.is_batch[c]:
                return False
            slot = row_of(g, row_index, "is_frontier_task")
            return bool(ready_bits(&g.s, c, slot) & row_bit(slot))
        finally:
            self._exit()

    # -- DataDesigner's lenient queries ---------------------------------------------------------
    # DataDesigner answers False, not an error, for anything its sets do not hold: an inactive
    # group, an unknown column, a row outside the group.

    def group_size(self, row_group):
        """Rows of *row_group* if it holds state, else None."""
        cdef Group g
        self._enter()
        try:
            g = self.groups.get(row_group)
            return None if g is None else g.s.n
        finally:
            self._exit()

    def cell_done(self, column, row_group, row):
        cdef Group g
        cdef int c
        cdef int64_t r
        self._enter()
        try:
            g = self.groups.get(row_group)
            if g is None or column not in self.index or type(row) is not int or not 0 <= row < g.s.n:
                return False
            c = self.index[column]
            r = row
            return bool(g.s.done[c * g.s.nw + (r >> 6)] & row_bit(r))
        finally:
            self._exit()

    def batch_done(self, column, row_group):
        cdef Group g
        self._enter()
        try:
            g = self.groups.get(row_group)
            if g is None or column not in self.index:
                return False
            return bool(g.s.batch_done[<int>self.index[column]])
        finally:
            self._exit()

    def row_dropped(self, row_group, row):
        cdef Group g
        cdef int64_t r
        self._enter()
        try:
            g = self.groups.get(row_group)
            if g is None or type(row) is not int or not 0 <= row < g.s.n:
                return False
            r = row
            return bool(g.s.dropped[r >> 6] & row_bit(r))
        finally:
            self._exit()

    def column_complete(self, column, row_group):
        """Whether every row of an active group is done or dropped for *column*; a name the
        graph does not know is never done, so only dropping every row resolves it."""
        cdef Group g
        cdef int c
        self._enter()
        try:
            g = self.groups.get(row_group)
            if g is None:
                return False
            if column not in self.index:
                return g.s.n_dropped == g.s.n
            c = self.index[column]
            return bool(g.s.batch_done[c]) or g.s.n_resolved[c] == g.s.n
        finally:
            self._exit()
