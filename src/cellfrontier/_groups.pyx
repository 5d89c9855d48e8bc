# cython: language_level=3
# cython: freethreading_compatible=True
"""The row groups of a plan and every query of their state: the lower half of the core.

:class:`GroupTable` owns the state and reads it: the plan, the active row groups
(:class:`Group`, created on first touch and registered only by a call that succeeds), the
summaries of compacted ones (:class:`CompactedGroups`), the per-core lock, every query
(completion and readiness) and :meth:`GroupTable.export_state`.  ``TrackerCore``
(``_core.pyx``) holds every change on top of it: the delta log, the events, the hand-out heap,
compaction and ``from_state``.

The argument checks here are the compiled half of :mod:`cellfrontier._validate`: a plain
``int`` or a known name passes in a few C operations; anything else goes to the Python rules.
"""

from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

from cellfrontier._bits cimport CF_MAX_ROWS, SLOT_BATCH, full_bit, row_bit

import numpy as np

from cellfrontier import _validate
from cellfrontier.errors import (
    InvalidArgumentError,
    RowGroupCompactedError,
    RowIndexError,
    SizeMismatchError,
    UnknownColumnError,
    UnknownRowGroupError,
)
from cellfrontier.state import ActiveGroup, CompactedGroup, CoreState

__all__ = ["CompactedGroups", "Group", "GroupTable"]

if _validate.MAX_ROWS != CF_MAX_ROWS:  # one limit, stated in C for the kernels and in Python for the checks
    raise ImportError(
        f"cellfrontier._validate.MAX_ROWS ({_validate.MAX_ROWS}) differs from the core's CF_MAX_ROWS "
        f"({CF_MAX_ROWS}); rebuild the package"
    )


# -- argument checks ------------------------------------------------------------------------
# The fast path of each (a plain ``int``, a known name) is a few C operations; anything else
# goes through cellfrontier._validate, which holds the rules and the wording.


cdef int column_id(dict index, tuple names, object column, str method) except -1:
    cdef object cid = None
    if type(column) is str or isinstance(column, str):  # an unhashable name must not reach dict.get()
        cid = index.get(column)
    if cid is None:
        raise UnknownColumnError(
            f"{method}() got unknown column {column!r} (expected one of {_validate.describe_names(names)})"
        )
    return <int>cid


cdef object row_group_key(object plan, object row_group, str method):
    """The row group id as a plain int, after checking its type and plan membership."""
    if type(row_group) is not int:
        row_group = _validate.as_integer(row_group, "row group", method)
    if not plan.has_row_group(row_group):
        raise UnknownRowGroupError(
            f"{method}() got unknown row group {row_group!r} (expected a row group of the plan: "
            f"{_validate.describe_plan(plan)})"
        )
    return row_group


cdef int64_t checked_row(Group g, object row_index, str method) except -1:
    cdef int overflow = 0
    cdef long long r
    if type(row_index) is not int:
        row_index = _validate.as_integer(row_index, "row index", method)
    r = PyLong_AsLongLongAndOverflow(row_index, &overflow)
    if overflow or r < 0 or r >= g.s.n:
        raise RowIndexError(
            f"{method}() got row index {row_index!r} outside row group "
            f"{g.row_group!r} of size {g.s.n} (expected 0 <= row_index < {g.s.n})"
        )
    return r


cdef object checked_rows(Group g, object rows, str method):
    """A bulk row array, checked: 1-D, integer, every row in the group.

    A contiguous int64 ndarray (what ``ready_rows`` returns, and what drivers pass back) is
    checked here in one C pass; anything else goes through ``_validate.row_array``.
    """
    cdef const int64_t[::1] view
    cdef Py_ssize_t i
    cdef int64_t n = g.s.n
    if type(rows) is np.ndarray:
        try:
            view = rows
        except (ValueError, TypeError, BufferError):  # another dtype, or not contiguous
            pass
        else:
            for i in range(view.shape[0]):
                if view[i] < 0 or view[i] >= n:
                    break
            else:
                return rows
    return _validate.row_array(rows, n, g.row_group, method)


cdef int check_size(Group g, object size, str method) except -1:
    if type(size) is not int:
        size = _validate.as_integer(size, "row_group_size", method)
    if size != g.s.n:
        raise SizeMismatchError(
            f"{method}() got row_group_size {size!r} for row group {g.row_group!r}, whose size is {g.s.n}"
        )
    return 0


cdef list column_list(dict index, tuple names, object columns, str method):
    """Column ids of a sequence of names (a single str is refused: it is not a sequence of them)."""
    if isinstance(columns, str):
        raise InvalidArgumentError(f"{method}() needs a sequence of column names, not a single str")
    try:
        columns = list(columns)
    except TypeError:
        raise InvalidArgumentError(
            f"{method}() needs a sequence of column names or None, got {type(columns).__name__}"
        ) from None
    return [column_id(index, names, name, method) for name in columns]


# -- one row group ------------------------------------------------------------------------


cdef class Group:
    """One active row group: the numpy arrays that own its memory and the C view over them."""

    @property
    def nbytes(self):
        return self.words.nbytes + self.counts.nbytes + self.flags.nbytes


cdef Group new_group(object key, int64_t n, int num_columns, object words=None, object flags=None):
    """A group of *n* rows (zeroed, or over the given arrays; counters are always zeroed)."""
    cdef Group g = Group.__new__(Group)
    cdef Py_ssize_t C = num_columns
    cdef Py_ssize_t nw = (n + 63) // 64
    # Never hand a zero-length buffer to the kernels: keep at least one element.
    g.words = np.zeros(max((2 * C + 1) * nw, 1), dtype=np.uint64) if words is None else words
    g.counts = np.zeros(max(4 * C, 1), dtype=np.int32)
    g.flags = np.zeros(max(3 * C, 1), dtype=np.uint8) if flags is None else flags
    cdef uint64_t[::1] wv = g.words
    cdef int32_t[::1] cv = g.counts
    cdef uint8_t[::1] fv = g.flags
    g.row_group = key
    g.s.n = n
    g.s.nw = nw
    g.s.done = &wv[0]
    g.s.ready = g.s.done + C * nw
    g.s.dropped = g.s.ready + C * nw
    g.s.n_done = &cv[0]
    g.s.n_resolved = g.s.n_done + C
    g.s.n_ready = g.s.n_resolved + C
    g.s.ready_from = g.s.n_ready + C
    g.s.batch_done = &fv[0]
    g.s.full_ready = g.s.batch_done + C
    g.s.roots_added = g.s.full_ready + C
    g.s.n_dropped = 0
    g.s.total_ready = 0
    return g


cdef Group group_from_state(object key, int64_t n, int num_columns, object words, object flags):
    """A group over words and flags read from outside (the caller recounts it)."""
    cdef Py_ssize_t C = num_columns
    cdef Py_ssize_t nw = (n + 63) // 64
    bits = np.frombuffer(bytes(words), dtype="<u8").astype(np.uint64)
    stored = np.frombuffer(bytes(flags), dtype=np.uint8)
    if bits.shape != (max((2 * C + 1) * nw, 1),) or stored.shape != (max(4 * C, 1),):
        raise ValueError(f"from_state() got arrays of the wrong shape for row group {key!r}")
    own = np.zeros(max(3 * C, 1), dtype=np.uint8)
    if C:
        own[:C] = stored[:C]
        own[C : 2 * C] = (stored[C : 2 * C] != 0) | ((stored[3 * C : 4 * C] != 0) << 1)
        own[2 * C : 3 * C] = stored[2 * C : 3 * C]
    return new_group(key, n, num_columns, bits, own)


cdef tuple exported_group(Group g, int num_columns):
    """(words, flags) of a group in the checkpoint layout (see :class:`ActiveGroup`)."""
    cdef Py_ssize_t C = num_columns
    flags = np.zeros(max(4 * C, 1), dtype=np.uint8)
    if C:
        own = g.flags
        flags[:C] = own[:C]
        flags[C : 2 * C] = own[C : 2 * C] & 1
        flags[2 * C : 3 * C] = own[2 * C : 3 * C]
        flags[3 * C : 4 * C] = (own[C : 2 * C] >> 1) & 1
    return g.words.astype("<u8").tobytes(), flags.tobytes()


# -- compacted row groups ---------------------------------------------------------------------


cdef class CompactedGroups:
    """Row groups whose arrays were released: their sizes, dropped rows and progress totals."""

    def __init__(self, int num_columns):
        self.entries = {}
        self.completed = np.zeros(num_columns, dtype=np.int64)
        self.dropped = np.zeros(num_columns, dtype=np.int64)
        cdef int64_t[::1] view
        if num_columns:  # (no column: nothing ever adds to the totals)
            view = self.completed
            self.completed_p = &view[0]
            view = self.dropped
            self.dropped_p = &view[0]
        self.packed_bytes = 0

    cdef int add(self, object key, object size, bytes packed) except -1:
        self.entries[key] = (size, packed)
        self.packed_bytes += len(packed)
        return 0

    cdef void add_totals(self, Group g, int num_columns) noexcept:
        """Add a group's progress to the totals, in place: C only, it cannot fail."""
        cdef int c
        for c in range(num_columns):
            self.completed_p[c] += g.s.n_done[c]
            self.dropped_p[c] += g.s.n_resolved[c] - g.s.n_done[c]

    def is_dropped(self, key, row_index, str method):
        size, packed = self.entries[key]
        row = _validate.as_row(row_index, size, method, f"row group {key!r} of size {size}")
        byte = row >> 3
        return byte < len(packed) and bool(packed[byte] & (1 << (row & 7)))

    def batch_complete(self, key):
        """A compacted group was complete: its batches are done unless every row was dropped
        (which a group of no rows vacuously is not)."""
        size, packed = self.entries[key]
        return size == 0 or int.from_bytes(packed, "little").bit_count() < size

    @property
    def nbytes(self):
        return self.completed.nbytes + self.dropped.nbytes + self.packed_bytes


# -- the table -----------------------------------------------------------------------------------


cdef class GroupTable:
    """The active row groups of *plan* for one compiled graph, and every query of their state.

    ``plan`` answers ``has_row_group(id)`` and ``row_group_size(id)``.  Every ``def`` method
    holds the core's lock from its first check to its result.
    """

    def __init__(self, compiled, plan):
        self.names = tuple(compiled.names)
        self.index = dict(compiled.index)
        self.plan = plan
        arrays = tuple(
            np.ascontiguousarray(a)
            for a in (
                compiled.is_batch, compiled.is_root, compiled.down_ptr, compiled.down_idx,
                compiled.cell_up_ptr, compiled.cell_up_idx, compiled.batch_up_ptr, compiled.batch_up_idx,
            )
        )
        # Pad empty index arrays so that taking &a[0] is always valid.
        self._arrays = arrays = tuple(a if a.size else np.zeros(1, dtype=a.dtype) for a in arrays)
        cdef const uint8_t[::1] u8
        cdef const int32_t[::1] i32
        self.graph.num_columns = len(self.names)
        u8 = arrays[0]
        self.graph.is_batch = &u8[0]
        u8 = arrays[1]
        self.graph.is_root = &u8[0]
        i32 = arrays[2]
        self.graph.down_ptr = &i32[0]
        i32 = arrays[3]
        self.graph.down_idx = &i32[0]
        i32 = arrays[4]
        self.graph.cell_up_ptr = &i32[0]
        i32 = arrays[5]
        self.graph.cell_up_idx = &i32[0]
        i32 = arrays[6]
        self.graph.batch_up_ptr = &i32[0]
        i32 = arrays[7]
        self.graph.batch_up_idx = &i32[0]
        self.groups = {}
        self.compacted = CompactedGroups(self.graph.num_columns)

    # -- groups -------------------------------------------------------------------------------

    cdef object _plan_size(self, object key, str method):
        """The plan's size of group *key*, through the one size check (a plan may be foreign)."""
        return _validate.check_group_size(self.plan.row_group_size(key), method, f"size of row group {key!r}")

    cdef Group _new_group(self, object key, str method):
        """A new, unregistered group for *key*; a compacted group may not come back."""
        if key in self.compacted.entries:
            raise RowGroupCompactedError(f"{method}() got row group {key!r}, which was already compacted")
        cdef Group g = new_group(key, self._plan_size(key, method), self.graph.num_columns)
        g.birth_due = g.s.n == 0
        return g

    cdef Group _lookup(self, object row_group, str method, bint create):
        """The slow path of ``_group`` (*create*) and ``_existing_group``: validate the id first."""
        key = row_group_key(self.plan, row_group, method)
        cdef Group g = self.groups.get(key)
        if g is not None or not create:
            return g
        return self._new_group(key, method)

    cdef Group _commit(self, Group g):
        """Register a group created by the current call, once every argument is validated
        and every buffer reserved (so that a refused call leaves no trace)."""
        if not g.attached:
            self.groups[g.row_group] = g
            g.attached = True
        return g

    cdef int _release(self, Group g) except -1:
        """Move a group's state into the compacted summaries (allocating first, then changing)."""
        cdef Py_ssize_t C = self.graph.num_columns
        cdef Py_ssize_t nw = g.s.nw
        packed = g.words[2 * C * nw : (2 * C + 1) * nw].astype("<u8").tobytes().rstrip(b"\x00")
        self.compacted.add(g.row_group, g.s.n, packed)  # the last step that can fail
        self.compacted.add_totals(g, self.graph.num_columns)
        del self.groups[g.row_group]
        g.attached = False
        return 0

    cdef int _check_untouched_row(self, object key, object row_index, str method) except -1:
        """Validate a row index of a group that holds no state (raises; never mutates)."""
        size = self._plan_size(key, method)
        _validate.as_row(row_index, size, method, f"row group {key!r} of size {size}")
        return 0

    # -- queries ------------------------------------------------------------------------------

    def is_ready(self, column, row_group, row_index, str method="is_frontier_task"):
        """Whether the task (column, row_group, row_index) is in the frontier.

        *method* names the public call in error messages (callers validate tasks with it).
        """
        cdef int c
        cdef Group g
        cdef int64_t r
        self._enter()
        try:
            c = self._column(column, method)
            g = self._existing_group(row_group, method)
            if g is None:
                if row_index is not None and not self.graph.is_batch[c]:
                    self._check_untouched_row(row_group_key(self.plan, row_group, method), row_index, method)
                return False
            if row_index is None:
                return bool(self.graph.is_batch[c] and g.s.full_ready[c] & full_bit(SLOT_BATCH))
            if self.graph.is_batch[c]:
                return False
            r = row_of(g, row_index, method)
            return bool(g.s.ready[c * g.s.nw + (r >> 6)] & row_bit(r))
        finally:
            self._exit()

    def ready_columns(self, row_group):
        """Columns with at least one ready task in *row_group*, in topological order."""
        cdef Group g
        self._enter()
        try:
            g = self._existing_group(row_group, "ready_columns")
            if g is None or g.s.total_ready == 0:
                return []
            return [self.names[c] for c in range(self.graph.num_columns) if g.s.n_ready[c] > 0]
        finally:
            self._exit()

    def total_ready(self):
        """Number of tasks in the frontier."""
        cdef Group g
        cdef int64_t total = 0
        self._enter()
        try:
            for g in self.groups.values():
                total += g.s.total_ready
            return total
        finally:
            self._exit()

    def is_done_ref(self, ref):
        """:meth:`is_done` for a slice reference (any object with the three fields)."""
        try:
            column, row_group, row_index = ref.column, ref.row_group, ref.row_index
        except AttributeError:
            raise InvalidArgumentError(
                f"is_complete() needs a SliceRef, got {type(ref).__name__} {ref!r}"
            ) from None
        self._enter()
        try:
            return self._is_done(column, row_group, row_index)
        finally:
            self._exit()

    def is_done(self, column, row_group, row_index):
        """Whether a cell (or, with ``row_index=None``, a batch) is complete."""
        self._enter()
        try:
            return self._is_done(column, row_group, row_index)
        finally:
            self._exit()

    cdef object _is_done(self, object column, object row_group, object row_index):
        cdef int c = self._column(column, "is_complete")
        cdef Group g = self._active(row_group)
        cdef int64_t r
        if g is not None and row_index is not None:  # the common case, in C
            r = row_of(g, row_index, "is_complete")
            return bool(g.s.done[c * g.s.nw + (r >> 6)] & row_bit(r))
        key = row_group_key(self.plan, row_group, "is_complete")
        g = self.groups.get(key)
        if g is None:
            if key in self.compacted.entries:
                if row_index is None:
                    return self.compacted.batch_complete(key)
                return not self.compacted.is_dropped(key, row_index, "is_complete")
            if row_index is not None:
                self._check_untouched_row(key, row_index, "is_complete")
            return False
        if row_index is None:
            return bool(g.s.batch_done[c])
        r = row_of(g, row_index, "is_complete")
        return bool(g.s.done[c * g.s.nw + (r >> 6)] & row_bit(r))

    def is_dropped(self, row_group, row_index):
        cdef Group g
        cdef int64_t r
        self._enter()
        try:
            key = row_group_key(self.plan, row_group, "is_dropped")
            g = self.groups.get(key)
            if g is None:
                if key in self.compacted.entries:
                    return self.compacted.is_dropped(key, row_index, "is_dropped")
                self._check_untouched_row(key, row_index, "is_dropped")
                return False
            r = checked_row(g, row_index, "is_dropped")
            return bool(g.s.dropped[r >> 6] & row_bit(r))
        finally:
            self._exit()

    def column_resolved(self, column, row_group):
        """Whether every row of *column* in the group is completed or dropped (O(1))."""
        cdef int c
        cdef Group g
        cdef str method = "is_column_complete_for_rg"
        self._enter()
        try:
            c = column_id(self.index, self.names, column, method)
            key = row_group_key(self.plan, row_group, method)
            g = self.groups.get(key)
            if g is None:
                # An untouched group of zero rows is vacuously resolved, as it is once touched.
                return key in self.compacted.entries or self._plan_size(key, method) == 0
            return bool(g.s.batch_done[c]) or g.s.n_resolved[c] == g.s.n
        finally:
            self._exit()

    def group_resolved(self, row_group, row_group_size, columns):
        """Whether every non-dropped row of the group has every given column done."""
        cdef Group g
        cdef int c
        cdef list ids
        cdef str method = "is_row_group_complete"
        self._enter()
        try:
            if isinstance(columns, str):
                raise InvalidArgumentError(
                    f"{method}() needs a sequence of column names, not the str {columns!r}"
                )
            try:
                columns = list(columns)
            except TypeError:
                raise InvalidArgumentError(
                    f"{method}() needs a sequence of column names, got {type(columns).__name__}"
                ) from None
            ids = [column_id(self.index, self.names, name, method) for name in columns]
            key = row_group_key(self.plan, row_group, method)
            if type(row_group_size) is not int:
                row_group_size = _validate.as_integer(row_group_size, "row_group_size", method)
            g = self.groups.get(key)
            if g is None:
                if key in self.compacted.entries:
                    expected = self.compacted.entries[key][0]
                else:
                    expected = self._plan_size(key, method)
                if row_group_size != expected:
                    raise SizeMismatchError(
                        f"{method}() got row_group_size {row_group_size!r} for row group {key!r}, "
                        f"whose size is {expected}"
                    )
                return key in self.compacted.entries or expected == 0 or not ids
            check_size(g, row_group_size, method)
            for c in ids:
                if g.s.n_resolved[c] != g.s.n:
                    return False
            return True
        finally:
            self._exit()

    def active_row_groups(self):
        """Ids of the groups that hold detailed state (touched and not compacted), sorted."""
        self._enter()
        try:
            return sorted(self.groups)
        finally:
            self._exit()

    def compacted_row_groups(self):
        """Ids of the compacted groups, sorted."""
        self._enter()
        try:
            return sorted(self.compacted.entries)
        finally:
            self._exit()

    def is_compacted(self, row_group):
        """Whether *row_group* (any value) is a compacted group."""
        self._enter()
        try:
            try:
                return row_group in self.compacted.entries
            except TypeError:  # unhashable
                return False
        finally:
            self._exit()

    @property
    def nbytes(self):
        """Bytes held by the state arrays (active groups and compacted summaries)."""
        cdef Group g
        cdef int64_t total
        self._enter()
        try:
            total = self.compacted.nbytes
            for g in self.groups.values():
                total += g.nbytes
            return total
        finally:
            self._exit()

    # -- state out ----------------------------------------------------------------------------

    def export_state(self, bint bitmaps=True):
        """The whole state at one instant, as plain values (:class:`~cellfrontier.state.CoreState`).

        This and ``TrackerCore.from_state`` are the only way state leaves or enters a core
        (checkpoints, pickling, progress).  Without *bitmaps* only the per-column totals are
        exported, in O(active groups x columns), which is what a progress report needs.
        """
        cdef Group g
        cdef int c
        cdef Py_ssize_t C = self.graph.num_columns
        cdef int64_t[::1] done_view
        cdef int64_t[::1] dropped_view
        self._enter()
        try:
            completed = np.array(self.compacted.completed, dtype=np.int64)
            dropped = np.array(self.compacted.dropped, dtype=np.int64)
            done_view = completed
            dropped_view = dropped
            for g in self.groups.values():
                for c in range(C):
                    done_view[c] += g.s.n_done[c]
                    dropped_view[c] += g.s.n_resolved[c] - g.s.n_done[c]
            active = compacted = ()
            if bitmaps:
                active = tuple(
                    ActiveGroup(key, (<Group>g).s.n, *exported_group(g, C))
                    for key, g in sorted(self.groups.items(), key=_first)
                )
                compacted = tuple(
                    CompactedGroup(key, size, packed)
                    for key, (size, packed) in sorted(self.compacted.entries.items(), key=_first)
                )
            return CoreState(
                columns=self.names,
                active=active,
                compacted=compacted,
                compacted_completed=tuple(int(x) for x in self.compacted.completed),
                compacted_dropped=tuple(int(x) for x in self.compacted.dropped),
                completed=tuple(int(x) for x in completed),
                dropped=tuple(int(x) for x in dropped),
                has_bitmaps=bool(bitmaps),
            )
        finally:
            self._exit()


def _first(item):
    return item[0]
