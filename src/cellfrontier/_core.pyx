# cython: language_level=3
# cython: freethreading_compatible=True
"""``TrackerCore``: every change to the state of the row groups of one compiled graph.

The state itself, its queries and ``export_state`` are :class:`~cellfrontier._groups.GroupTable`
(``_groups.pyx``); this class adds the delta log, the events, the hand-out heap, compaction and
``from_state``.  A core of other semantics (``integrations/_dd_core.pyx``) replaces the steps
``_mark_cell``, ``_mark_range``, ``_drop_row``, ``_admit``, ``_check_admissible`` and
``_result`` and keeps everything else.

An event flows through four steps, always in this order:

1. **Validate.**  The entry point checks every argument (names, ids, ranges, types, sizes
   against the plan) and finds or creates the row group, without changing anything.  A call
   that raises here leaves the state as it was.
2. **Reserve.**  The delta log and any scratch words are grown to the worst case the event
   can record (one entry per touched word or full-column task), so nothing below allocates.
3. **Run the kernel** (``_kernels.pxd``): bit and counter updates over C structs that cannot
   fail.  Only now is a newly touched group registered.
4. **Return the delta**: the log's word-level entries, copied into a lazy
   :class:`~cellfrontier._values.FrontierDelta`; a group with ready tasks joins the hand-out
   heap (a min-heap of row-group ids, so tasks come out in row-group order).

Every entry point holds the core's lock (``_lock.h``) from its first check to its result, so
events of several threads never interleave and reads see one instant; no garbage-collector
trick and no assumption about the GIL's scheduling is involved.

State leaves a core only through :meth:`GroupTable.export_state` and enters only through
:meth:`TrackerCore.from_state` (checkpoints, pickling, progress): both speak the plain values
of :mod:`cellfrontier.state`, and ``from_state`` trusts nothing it reads.

Row groups get their arrays when first touched and give them back in :meth:`compact`, which
keeps a compacted group's size and dropped rows (packed) and adds its progress to the totals.
"""

from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

from cellfrontier cimport _kernels as kernels
from cellfrontier._bits cimport SLOT_BATCH, clear_ready, key_column, key_slot, ready_bits, row_bit, set_ready
from cellfrontier._groups cimport (
    GroupTable,
    Group,
    check_size,
    checked_rows,
    column_list,
    group_from_state,
    row_group_key,
    row_of,
)
from cellfrontier._values cimport FrontierDelta, TaskFactory, delta_from_log

import heapq

import numpy as np

from cellfrontier import _validate
from cellfrontier._validate import MAX_ROWS
from cellfrontier.errors import InvalidArgumentError, StrategyMismatchError

__all__ = ["MAX_ROWS", "TrackerCore"]

cdef Py_ssize_t NO_LIMIT = (<Py_ssize_t>1) << 62


cdef class TrackerCore(GroupTable):
    """Every change to the state of :class:`~cellfrontier._groups.GroupTable`: events,
    hand-outs, compaction and :meth:`from_state`, for one compiled graph.

    Every ``def`` method holds the core's lock from its first check to its result.
    """

    def __cinit__(self):
        self.log.added = NULL
        self.log.removed = NULL
        self.scratch = NULL

    def __init__(self, compiled, plan):
        super().__init__(compiled, plan)
        self.factory = TaskFactory(
            self.names, ["from_scratch" if compiled.is_root[c] else "batch" for c in range(len(self.names))]
        )
        self.heap = []
        self._reserve(64, 64)

    def __dealloc__(self):
        free(self.log.added)
        free(self.log.removed)
        free(self.scratch)

    # -- buffers and the heap -------------------------------------------------------------

    cdef int _reserve(self, Py_ssize_t n_added, Py_ssize_t n_removed) except -1:
        """Empty the log and make room for the worst case of the next kernel, so kernels cannot fail.

        Sizes are in entries (a word of cells, or one full-column task), so that a bulk
        event's buffers grow with the words it can touch, not with its rows.
        """
        cdef void* p
        self.log.n_added = 0
        self.log.n_removed = 0
        self.log.tasks_added = 0
        self.log.tasks_removed = 0
        n_added += self.graph.num_columns  # room for admit_empty_group()
        if n_added > self.log.cap_added:
            p = realloc(self.log.added, 2 * n_added * sizeof(int64_t))
            if p == NULL:
                raise MemoryError()
            self.log.added = <int64_t*>p
            self.log.cap_added = n_added
        if n_removed > self.log.cap_removed:
            p = realloc(self.log.removed, 2 * n_removed * sizeof(int64_t))
            if p == NULL:
                raise MemoryError()
            self.log.removed = <int64_t*>p
            self.log.cap_removed = n_removed
        return 0

    cdef uint64_t* _scratch(self, Py_ssize_t nw) except NULL:
        """Zeroed scratch words (a row mask), reused across calls."""
        cdef void* p
        if nw < 1:
            nw = 1
        if nw > self.scratch_words:
            p = realloc(self.scratch, nw * sizeof(uint64_t))
            if p == NULL:
                raise MemoryError()
            self.scratch = <uint64_t*>p
            self.scratch_words = nw
        memset(self.scratch, 0, nw * sizeof(uint64_t))
        return self.scratch

    cdef void _push(self, Group g):
        if g.s.total_ready > 0 and not g.in_heap:
            heapq.heappush(self.heap, g.row_group)
            g.in_heap = True

    cdef FrontierDelta _finish(self, Group g):
        """The delta of the current event; a zero-row group's first event admits it."""
        if g.birth_due:
            g.birth_due = False
            kernels.admit_empty_group(&self.graph, &g.s, &self.log)
        self._push(g)
        return delta_from_log(&self.log, self.factory, g.row_group)

    cdef int _strategy_error(self, int c, str method, str hint) except -1:
        if self.graph.is_batch[c]:
            raise StrategyMismatchError(
                f"{method}() needs a cell_by_cell column, but {self.names[c]!r} is full_column{hint}"
            )
        raise StrategyMismatchError(
            f"{method}() needs a full_column column, but {self.names[c]!r} is cell_by_cell{hint}"
        )

    cdef Py_ssize_t _fanout_entries(self, int c, Group g):
        """Delta entries a bulk event on column *c* can add: per downstream column one entry
        per bitmap word (cells) or one (its full-column task)."""
        return (self.graph.down_ptr[c + 1] - self.graph.down_ptr[c]) * (g.s.nw + 1) + 1

    # -- mutations --------------------------------------------------------------------------

    def mark_cell(self, column, row_group, row_index):
        """Mark one cell of a cell-by-cell column complete."""
        cdef int c
        cdef Group g
        cdef int64_t r
        self._enter()
        try:
            c = self._cell_column(column, "mark_cell_complete", " (use mark_row_range_complete())")
            g = self._group(row_group, "mark_cell_complete")
            r = row_of(g, row_index, "mark_cell_complete")
            self._reserve(self.graph.down_ptr[c + 1] - self.graph.down_ptr[c] + 1, 1)
            g = self._commit(g)
            self._mark_cell(g, c, r)
            return self._result(g)
        finally:
            self._exit()

    def mark_range(self, column, row_group, row_group_size):
        """Mark the whole row range of a full-column column complete."""
        cdef int c
        cdef Group g
        cdef uint64_t* scratch
        self._enter()
        try:
            c = self._full_column(
                column, "mark_row_range_complete", " (use mark_cell_complete() or mark_cells_complete())"
            )
            g = self._group(row_group, "mark_row_range_complete")
            check_size(g, row_group_size, "mark_row_range_complete")
            scratch = self._scratch(g.s.nw)
            self._reserve(self._fanout_entries(c, g), 1)  # removes at most its own batch task
            g = self._commit(g)
            self._mark_range(g, c, scratch)
            return self._result(g)
        finally:
            self._exit()

    def mark_cells(self, column, row_group, rows):
        """Bulk: mark many cells of one cell-by-cell column in one row group (all or nothing)."""
        cdef int c
        cdef Group g
        cdef uint64_t* mask
        cdef const int64_t[::1] rv
        self._enter()
        try:
            c = self._cell_column(column, "mark_cells_complete", "")
            g = self._group(row_group, "mark_cells_complete")
            rv = checked_rows(g, rows, "mark_cells_complete")
            mask = self._scratch(g.s.nw)
            if rv.shape[0]:
                kernels.rows_to_mask(&rv[0], rv.shape[0], mask)
            self._reserve(self._fanout_entries(c, g), g.s.nw + 1)  # removes: one entry per word of c
            g = self._commit(g)
            kernels.mark_cells(&self.graph, &g.s, &self.log, c, mask)
            return self._result(g)
        finally:
            self._exit()

    def drop_row(self, row_group, row_index):
        """Drop one row: its cells leave the frontier; full-column tasks may become ready."""
        cdef Group g
        cdef int64_t r
        self._enter()
        try:
            g = self._group(row_group, "drop_row")
            r = row_of(g, row_index, "drop_row")
            self._reserve(self.graph.num_columns + 1, self.graph.num_columns + 1)
            g = self._commit(g)
            self._drop_row(g, r)
            return self._result(g)
        finally:
            self._exit()

    def drop_rows(self, row_group, rows):
        """Bulk: drop many rows of one row group (all or nothing)."""
        cdef Group g
        cdef uint64_t* mask
        cdef const int64_t[::1] rv
        cdef Py_ssize_t C = self.graph.num_columns
        self._enter()
        try:
            g = self._group(row_group, "drop_rows")
            rv = checked_rows(g, rows, "drop_rows")
            mask = self._scratch(g.s.nw)
            if rv.shape[0]:
                kernels.rows_to_mask(&rv[0], rv.shape[0], mask)
            self._reserve(C + 1, C * (g.s.nw + 1) + 1)  # removes: one entry per (column, word)
            g = self._commit(g)
            kernels.drop_rows(&self.graph, &g.s, &self.log, mask)
            return self._result(g)
        finally:
            self._exit()

    def prefill(self, row_group, row_group_size, dropped, cell_columns, rows, full_columns):
        """Bulk: a row group's kept state in one event (all or nothing).

        Drops *dropped*, marks *rows* done in every column of *cell_columns* (cell-by-cell) and
        marks every column of *full_columns* (full-column) done: the same state as those calls
        one after another, but every argument is checked before anything changes.  Returns
        None: such an event's entries would list tasks that entered the frontier and left it
        within the call; read the group's ready tasks afterwards.
        """
        cdef list cells, batches
        cdef int c
        cdef Group g
        cdef const int64_t[::1] dv
        cdef const int64_t[::1] rv
        cdef uint64_t* scratch
        cdef Py_ssize_t nw, n_added, n_removed
        cdef Py_ssize_t C = self.graph.num_columns
        cdef str method = "prefill_row_group"
        self._enter()
        try:
            cells = column_list(self.index, self.names, cell_columns, method)
            batches = column_list(self.index, self.names, full_columns, method)
            for c in cells:
                if self.graph.is_batch[c]:
                    self._strategy_error(c, method, " (list it in full_columns)")
            for c in batches:
                if not self.graph.is_batch[c]:
                    self._strategy_error(c, method, " (list it in cell_columns)")
            g = self._group(row_group, method)
            check_size(g, row_group_size, method)
            dv = checked_rows(g, dropped, method)
            rv = checked_rows(g, rows, method)
            nw = g.s.nw
            # The dropped rows, the kept rows, mark_range's words, and a copy of the kept rows
            # per cell column: mark_cells overwrites its mask with the rows it newly marked, so
            # a column whose kept rows were partly done already would shrink the next one's.
            scratch = self._scratch(4 * nw)
            if dv.shape[0]:
                kernels.rows_to_mask(&dv[0], dv.shape[0], scratch)
            if rv.shape[0]:
                kernels.rows_to_mask(&rv[0], rv.shape[0], scratch + nw)
            n_added = C + 1
            n_removed = C * (nw + 1) + 1
            for c in cells:
                n_added += self._fanout_entries(c, g)
                n_removed += nw + 1
            for c in batches:
                n_added += self._fanout_entries(c, g)
                n_removed += 1
            self._reserve(n_added, n_removed)
            g = self._commit(g)
            if dv.shape[0]:
                kernels.drop_rows(&self.graph, &g.s, &self.log, scratch)
            for c in cells:
                memcpy(scratch + 3 * nw, scratch + nw, nw * sizeof(uint64_t))
                kernels.mark_cells(&self.graph, &g.s, &self.log, c, scratch + 3 * nw)
            for c in batches:
                self._mark_range(g, c, scratch + 2 * nw)
            self._result(g)
        finally:
            self._exit()

    def add_roots(self, row_group, row_group_size, columns=None):
        """Admit a row group: root tasks (all roots, or the given root columns) become ready."""
        cdef Group g
        cdef list ids
        cdef int c
        self._enter()
        try:
            if columns is None:
                ids = [c for c in range(self.graph.num_columns) if self.graph.is_root[c]]
            else:
                ids = column_list(self.index, self.names, columns, "add_root_tasks")
                for c in ids:
                    self._check_admissible(c)
            g = self._group(row_group, "add_root_tasks")
            check_size(g, row_group_size, "add_root_tasks")
            self._reserve(len(ids) * (g.s.nw + 1) + 1, 1)  # one entry per word (cells) or task (batch)
            g = self._commit(g)
            for c in ids:
                self._admit(g, c)
            return self._result(g)
        finally:
            self._exit()

    # The steps a core of other semantics replaces (see integrations/_dd_core.pyx); each runs
    # after every check and reservation, and the kernels behind them cannot fail.

    cdef void _mark_cell(self, Group g, int c, int64_t r) noexcept:
        kernels.mark_cell(&self.graph, &g.s, &self.log, c, r)

    cdef void _mark_range(self, Group g, int c, uint64_t* scratch) noexcept:
        kernels.mark_range(&self.graph, &g.s, &self.log, c, scratch)

    cdef void _drop_row(self, Group g, int64_t r) noexcept:
        kernels.drop_row(&self.graph, &g.s, &self.log, r)

    cdef void _admit(self, Group g, int c) noexcept:
        kernels.add_roots(&self.graph, &g.s, &self.log, c)

    cdef int _check_admissible(self, int c) except -1:
        """Only a root column can be admitted (its tasks have no dependency to wait for)."""
        if not self.graph.is_root[c]:
            raise InvalidArgumentError(
                f"add_root_tasks() got column {self.names[c]!r}, which has dependencies (not a root)"
            )
        return 0

    cdef object _result(self, Group g):
        """What a mutation returns: its delta."""
        return self._finish(g)

    def set_ready(self, column, row_group, row_index, bint ready):
        """Put one task into the frontier (``ready``) or take it out; returns True on change."""
        cdef str method = "add_ready_tasks" if ready else "mark_enqueued"
        cdef int c
        cdef Group g
        cdef int64_t slot
        cdef uint64_t bit
        cdef bint admitted = False
        self._enter()
        try:
            c = self._column(column, method)
            if ready:
                g = self._group(row_group, method)
            else:
                g = self._existing_group(row_group, method)
                if g is None:
                    return False
            if row_index is None:
                if not self.graph.is_batch[c]:
                    raise StrategyMismatchError(
                        f"{method}() got a task for cell_by_cell column {column!r} without a row_index"
                    )
                slot = SLOT_BATCH
                bit = 1
            else:
                if self.graph.is_batch[c]:
                    raise StrategyMismatchError(
                        f"{method}() got a task for full_column column {column!r} with a row_index"
                    )
                slot = row_of(g, row_index, method)
                bit = row_bit(slot)
            if not g.attached:
                self._reserve(1, 1)
                g = self._commit(g)
                if g.birth_due:  # a zero-row group: its first call admits it
                    g.birth_due = False
                    kernels.admit_empty_group(&self.graph, &g.s, &self.log)
                    admitted = True
            if bool(ready_bits(&g.s, c, slot) & bit) == ready:
                self._push(g)
                return admitted  # the admission made it ready: added by this call
            if ready:
                set_ready(&g.s, c, slot, bit)
            else:
                clear_ready(&g.s, c, slot, bit)
            self._push(g)
            return True
        finally:
            self._exit()

    # -- handing out the frontier -----------------------------------------------------------

    cdef list _tasks(self, Group g, Py_ssize_t limit, bint take, list out):
        """Append up to *limit* ready tasks of *g* to *out*, in (column, row) order."""
        cdef int64_t* keys
        cdef Py_ssize_t n, i
        if limit <= 0:
            return out
        keys = <int64_t*>malloc(limit * sizeof(int64_t))
        if keys == NULL:
            raise MemoryError()
        try:
            n = kernels.collect_ready(&self.graph, &g.s, limit, keys, take)
            for i in range(n):
                out.append(self.factory.build(key_column(keys[i]), g.row_group, key_slot(keys[i])))
        finally:
            free(keys)
        return out

    def pop_ready(self, max_tasks=None):
        """Hand out up to *max_tasks* ready tasks in (row group, column, row) order."""
        cdef Py_ssize_t limit = NO_LIMIT
        cdef Group g
        cdef list out = []
        if max_tasks is not None:
            if type(max_tasks) is not int:
                max_tasks = _validate.as_integer(max_tasks, "max_tasks", "pop_ready")
            if max_tasks < 0:
                raise InvalidArgumentError(f"pop_ready() needs max_tasks >= 0, got {max_tasks!r}")
            limit = min(max_tasks, NO_LIMIT)  # a huge limit (beyond Py_ssize_t) means no limit
        self._enter()
        try:
            heap = self.heap
            while heap and limit > len(out):
                g = self.groups.get(heap[0])
                if g is None or g.s.total_ready == 0:
                    heapq.heappop(heap)
                    if g is not None:
                        g.in_heap = False
                    continue
                self._tasks(g, min(limit - len(out), g.s.total_ready), True, out)
                if g.s.total_ready == 0:
                    heapq.heappop(heap)
                    g.in_heap = False
            return out
        finally:
            self._exit()

    def ready_tasks(self):
        """Every ready task, in (row group, column, row) order, leaving the frontier as it is."""
        cdef list out = []
        cdef Group g
        self._enter()
        try:
            for key in sorted(key for key, g in self.groups.items() if (<Group>g).s.total_ready > 0):
                g = self.groups[key]
                self._tasks(g, g.s.total_ready, False, out)
            return out
        finally:
            self._exit()

    def ready_rows(self, column, row_group, bint take=False):
        """Ready rows of a cell-by-cell column in one group, as an int64 array."""
        cdef int c
        cdef Group g
        cdef int64_t[::1] view
        self._enter()
        try:
            c = self._cell_column(column, "ready_rows", " (use pop_ready_batch())")
            g = self._existing_group(row_group, "ready_rows")
            if g is None or g.s.n_ready[c] == 0:
                return np.zeros(0, dtype=np.int64)
            out = np.empty(g.s.n_ready[c], dtype=np.int64)
            view = out
            kernels.copy_ready_rows(&g.s, c, &view[0], take)
            return out
        finally:
            self._exit()

    def pop_ready_batch(self, column, row_group):
        """Take the full-column task of *column* in *row_group* if it is ready."""
        cdef int c
        cdef Group g
        self._enter()
        try:
            c = self._full_column(column, "pop_ready_batch", "")
            g = self._existing_group(row_group, "pop_ready_batch")
            return g is not None and kernels.acknowledge(&g.s, c, SLOT_BATCH)
        finally:
            self._exit()

    # -- compaction ---------------------------------------------------------------------------

    def compact(self, row_group, bint abandon=False):
        """Release a group's arrays, keeping its dropped rows (packed) and progress totals.

        A group is compacted once it is complete (every row dropped or done in every column),
        so that the terminal answers kept afterwards are true.  An incomplete group is refused
        unless *abandon*: its open rows are then dropped first, which is what they became.
        """
        cdef Group g
        cdef int64_t n_open
        cdef uint64_t* mask
        cdef int c
        cdef Py_ssize_t C = self.graph.num_columns
        self._enter()
        try:
            key = row_group_key(self.plan, row_group, "compact_row_group")
            if key in self.compacted.entries:
                return
            g = self.groups.get(key)
            if g is None:
                size = self._plan_size(key, "compact_row_group")
                if size == 0:
                    self.compacted.add(key, size, b"")
                    return
                if not abandon:
                    raise InvalidArgumentError(_incomplete_message(key, size))
                every_row = np.packbits(np.ones(size, dtype=np.uint8), bitorder="little").tobytes()
                self.compacted.add(key, size, every_row)
                for c in range(C):
                    self.compacted.dropped_p[c] += size
                return
            n_open = kernels.open_rows(&self.graph, &g.s, NULL)
            if n_open:
                if not abandon:
                    raise InvalidArgumentError(_incomplete_message(key, n_open))
                mask = self._scratch(g.s.nw)
                kernels.open_rows(&self.graph, &g.s, mask)
                self._reserve(C + 1, C * (g.s.nw + 1) + 1)
                kernels.drop_rows(&self.graph, &g.s, &self.log, mask)
            self._release(g)
            self._prune_heap()
        finally:
            self._exit()

    cdef int _prune_heap(self) except -1:
        """Ids of released groups leave the heap lazily, when pop_ready meets them; a driver that
        only uses the bulk calls never does, so drop them here once they pile up (amortised O(1))."""
        if len(self.heap) > 2 * len(self.groups) + 64:
            live = [key for key in self.heap if key in self.groups]
            heapq.heapify(live)
            self.heap = live
        return 0

    @classmethod
    def from_state(cls, compiled, plan, state):
        """A core for *compiled* over *plan* holding *state* (from :meth:`export_state`).

        Nothing in *state* is trusted: every row group must be in the plan with the plan's
        size and appear once, arrays must have the group's shape, bits past a group's end are
        cleared, flags clamped and every counter recomputed from the bits.  Tasks that were
        handed out but not completed are ready again; nothing completed is offered again.
        Raises ``ValueError`` (or a library error) for state that does not fit.
        """
        cdef TrackerCore core = cls(compiled, plan)
        core._load(state)
        return core

    cdef int _load(self, object state) except -1:
        cdef Group g
        cdef Py_ssize_t C = self.graph.num_columns
        cdef uint64_t* scratch
        if not state.has_bitmaps:
            raise ValueError("from_state() needs a state exported with its bitmaps")
        if tuple(state.columns) != self.names:
            raise ValueError("checkpoint column order does not match its graph")
        for entry in state.active:
            key = row_group_key(self.plan, entry.row_group, "from_state")
            size = self._plan_size(key, "from_state")
            if entry.size != size:
                raise ValueError(f"checkpoint row group {key!r} has the wrong size")
            if key in self.groups:
                raise ValueError(f"checkpoint lists row group {key!r} twice")
            g = group_from_state(key, size, C, entry.words, entry.flags)
            kernels.recount(&self.graph, &g.s)
            scratch = self._scratch(g.s.nw)
            self._reserve(C * (g.s.nw + 1) + 1, 1)
            self._commit(g)
            kernels.rebuild_frontier(&self.graph, &g.s, &self.log, scratch)
            self._push(g)
        for entry in state.compacted:
            key = row_group_key(self.plan, entry.row_group, "from_state")
            size = self._plan_size(key, "from_state")
            packed = bytes(entry.dropped)
            if entry.size != size or key in self.groups or key in self.compacted.entries:
                raise ValueError(f"checkpoint compacted row group {key!r} does not fit the plan")
            if len(packed) > (size + 7) // 8:
                raise ValueError(f"checkpoint compacted row group {key!r} has too many dropped rows")
            self.compacted.add(key, size, packed)
        for name, totals, target in (
            ("completed", state.compacted_completed, self.compacted.completed),
            ("dropped", state.compacted_dropped, self.compacted.dropped),
        ):
            values = [
                _validate.as_count(v, f"compacted {name} total", "from_state", 0, 2**63) for v in totals
            ]
            if len(values) != C:
                raise ValueError(f"from_state() needs {C} compacted {name} totals, got {len(values)}")
            target[:] = values
        return 0


def _incomplete_message(key, n_open):
    return (
        f"compact_row_group() got row group {key!r}, which is not complete: {n_open} rows are "
        "neither dropped nor done in every column (drop them first, or pass abandon=True)"
    )
