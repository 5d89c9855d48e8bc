# cython: language_level=3
"""Per-row-group bitmaps and the frontier updater.

Layout of one admitted row group with ``n`` rows, ``nw = ceil(n / 64)`` words and ``C``
columns (column ids are positions in topological order):

* ``bits`` (uint64): ``done[C * nw] | ready[C * nw] | dropped[nw]`` -- one bit per
  (column, row) for completed cells, one per (column, row) for ready cell tasks, one per
  dropped row.
* ``counts`` (int32): ``n_done[C] | n_resolved[C] | n_ready[C] | ready_from[C]`` -- rows
  completed, rows completed *or* dropped, and ready tasks, per column; they make "is this
  column done for this group?" O(1) and let the frontier walk skip empty columns.
  ``ready_from`` is a lower bound on the first bitmap word of a column holding a ready bit
  (no ready bit lies below it), so that handing out tasks one at a time never rescans the
  words it already emptied.
* ``flags`` (uint8): ``batch_done[C] | batch_ready[C] | roots_added[C] | scratch_ready[C]``
  (``scratch_ready`` is used only in DataDesigner-compatible mode, where a full-column task
  typed ``from_scratch`` and one typed ``batch`` are distinct frontier entries).

DataDesigner-compatible mode (``dd_compat=True``) reproduces the event-time re-evaluation of
DataDesigner's own tracker for its drop-in adapter: repeated events re-check downstream
tasks, a drop re-checks every full-column task, root admission adds every row, and a
compacted group may be touched again (it starts afresh).  The kernels are the same
readiness checks; only the guards differ.

Every ``def`` method validates its arguments completely (names, ids, ranges, types) before
any state changes, then calls ``noexcept`` kernels that trust their inputs.  A kernel
never fails: the delta buffers are reserved beforehand for the worst case of the event.
Each task enters the frontier at most once, when its last dependency finishes, so the
kernels never have to ask whether a task was already handed out.
"""

cimport cython
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyObject_GenericSetAttr
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

import gc
import heapq

import numpy as np

from cellfrontier.errors import (
    IndexTypeError,
    InvalidArgumentError,
    RowGroupCompactedError,
    RowIndexError,
    SizeMismatchError,
    StrategyMismatchError,
    UnknownColumnError,
    UnknownRowGroupError,
)

cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <intrin.h>
    static inline int cf_popcount(unsigned long long x) { return (int)__popcnt64(x); }
    static inline int cf_ctz(unsigned long long x) { unsigned long i; _BitScanForward64(&i, x); return (int)i; }
    #else
    static inline int cf_popcount(unsigned long long x) { return __builtin_popcountll(x); }
    static inline int cf_ctz(unsigned long long x) { return __builtin_ctzll(x); }
    #endif
    """
    int cf_popcount(unsigned long long x) nogil
    int cf_ctz(unsigned long long x) nogil

cdef extern from "_sha1.h":
    void cf_sha1(const unsigned char* data, size_t length, unsigned char* out) noexcept nogil

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL
    void PyObject_GC_UnTrack(void* op)
    bint PyObject_IS_GC(object op)

cdef Py_ssize_t NO_LIMIT = (<Py_ssize_t>1) << 62

cdef str CELL = "cell"
cdef str BATCH = "batch"
cdef str FROM_SCRATCH = "from_scratch"
# A delta entry is a pair (key, mask): key = (column << 32) | code, where code is a word
# index of the group's bitmaps (mask = the rows of that word), BATCH_CODE for a batch task
# or SCRATCH_CODE for a from-scratch task (compatible mode only).  Recording whole words
# keeps a bulk event O(words), not O(cells); rows are expanded only when a caller asks.
# The constants are typed so that masking stays in C (an untyped literal this large makes
# Cython use Python ints).
cdef int64_t LOW32 = 0xFFFFFFFF
cdef int64_t BATCH_CODE = 0xFFFFFFFF
cdef int64_t SCRATCH_CODE = 0xFFFFFFFE
# Row codes of full-column tasks in an id registry (see TrackerCore.set_task_class).
cdef int64_t BATCH_ENTRY = -1
cdef int64_t SCRATCH_ENTRY = -2
# Pseudo row numbers for the single-task recorders and the hand-out buffer.
cdef int64_t BATCH_ROW = -1
cdef int64_t SCRATCH_ROW = 0xFFFFFFFE


def _names_hint(names):
    """A short list of the valid column names for an error message."""
    shown = ", ".join(repr(n) for n in names[:8])
    return shown + (f", ... ({len(names)} columns)" if len(names) > 8 else "") if names else "no columns"


def _plan_hint(plan):
    """A short description of the plan's row groups for an error message."""
    describe = getattr(plan, "describe", None)
    if describe is not None:
        return describe()
    return type(plan).__name__


cdef inline uint64_t _tail_mask(int64_t n, Py_ssize_t w, Py_ssize_t nw) noexcept:
    """Valid-row mask of word *w* (the last word of a group may be partial)."""
    cdef int64_t rem
    if w + 1 < nw:
        return ~(<uint64_t>0)
    rem = n - 64 * w
    if rem >= 64:
        return ~(<uint64_t>0)
    return ((<uint64_t>1) << rem) - 1


# ----------------------------------------------------------------------------------------
# Value types built in compiled code


@cython.freelist(1024)
@cython.final
@cython.no_gc
cdef class Task:
    """One unit of work: a cell (``row_index`` set) or a whole row group of a column.

    Frozen and hashable.  ``task_type`` is ``"cell"``, ``"batch"`` or ``"from_scratch"``
    (a full-column task of a root column).  Built in compiled code when the frontier is
    handed out, so a ready task costs no Python object until someone asks for it.

    Tasks hold names and numbers, which cannot refer back to them, so they stay out of the
    cyclic garbage collector (a scheduler holding thousands of tasks would otherwise make
    every young collection rescan them).
    """

    cdef readonly str column
    cdef readonly object row_group
    cdef readonly object row_index
    cdef readonly str task_type

    def __init__(self, column, row_group, row_index, task_type):
        if not isinstance(column, str):
            raise InvalidArgumentError(f"Task() needs a str column, got {column!r}")
        if not isinstance(task_type, str):
            raise InvalidArgumentError(f"Task() needs a str task_type, got {task_type!r}")
        self.column = column
        self.row_group = row_group
        self.row_index = row_index
        self.task_type = task_type

    def __hash__(self):
        return hash((self.column, self.row_group, self.row_index, self.task_type))

    def __richcmp__(self, other, int op):
        if op != 2 and op != 3:
            return NotImplemented
        if not isinstance(other, Task):
            return NotImplemented
        o = <Task>other
        same = (
            self.column == o.column
            and self.row_group == o.row_group
            and self.row_index == o.row_index
            and self.task_type == o.task_type
        )
        return same if op == 2 else not same

    def __repr__(self):
        return (
            f"Task(column={self.column!r}, row_group={self.row_group!r}, "
            f"row_index={self.row_index!r}, task_type={self.task_type!r})"
        )

    def __reduce__(self):
        return (Task, (self.column, self.row_group, self.row_index, self.task_type))


cdef inline Task _task(str column, object row_group, object row_index, str task_type):
    cdef Task t = Task.__new__(Task)
    t.column = column
    t.row_group = row_group
    t.row_index = row_index
    t.task_type = task_type
    return t


# ----------------------------------------------------------------------------------------
# Stable task ids
#
# A scheduler that identifies tasks by ``"task-" + sha1(f"{column}\0{row_group}\0{row_index}\0
# {task_type}").hexdigest()[:16]`` (DataDesigner's documented id format) computes one id per
# task it takes.  Computed here, an id costs a C hash of a few dozen bytes instead of a string
# format, an encode, a hash object and a hex digest in Python.

cdef const char* _HEX_DIGITS = b"0123456789abcdef"


cdef Py_ssize_t _int_text(object value, char* out) noexcept:
    """Write an exact ``int`` in decimal to *out* (24 bytes); -1 if it is not one or too large."""
    cdef int overflow = 0
    cdef long long v
    cdef unsigned long long u
    cdef char digits[24]
    cdef Py_ssize_t n = 0, i, start = 0
    if type(value) is not int:
        return -1
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow:
        return -1
    if v < 0:
        out[0] = 45  # "-"
        start = 1
        u = <unsigned long long>(-(v + 1)) + 1
    else:
        u = <unsigned long long>v
    while True:
        digits[n] = <char>(48 + u % 10)
        n += 1
        u //= 10
        if u == 0:
            break
    for i in range(n):
        out[start + i] = digits[n - 1 - i]
    return start + n


cdef str stable_task_id_of(str column, object row_group, object row_index, str task_type):
    """The stable id of a task from its four fields (see the comment above)."""
    cdef char rg_text[24]
    cdef char ri_text[24]
    cdef Py_ssize_t n_col, n_type, n_rg, n_ri, total, pos, i
    cdef const char* col_p
    cdef const char* type_p
    cdef const char* rg_p = rg_text
    cdef const char* ri_p = ri_text
    cdef unsigned char stack[256]
    cdef unsigned char* buf = stack
    cdef unsigned char digest[20]
    cdef char text[21]
    col_s = column if type(column) is str else format(column, "")
    type_s = task_type if type(task_type) is str else format(task_type, "")
    col_p = PyUnicode_AsUTF8AndSize(col_s, &n_col)
    type_p = PyUnicode_AsUTF8AndSize(type_s, &n_type)
    rg_s = ri_s = None
    n_rg = _int_text(row_group, rg_text)
    if n_rg < 0:
        rg_s = format(row_group, "")
        rg_p = PyUnicode_AsUTF8AndSize(rg_s, &n_rg)
    if row_index is None:
        ri_p = b"None"
        n_ri = 4
    else:
        n_ri = _int_text(row_index, ri_text)
        if n_ri < 0:
            ri_s = format(row_index, "")
            ri_p = PyUnicode_AsUTF8AndSize(ri_s, &n_ri)
    total = n_col + n_rg + n_ri + n_type + 3
    if total > 256:
        buf = <unsigned char*>malloc(total)
        if buf == NULL:
            raise MemoryError()
    pos = 0
    memcpy(buf + pos, col_p, n_col); pos += n_col
    buf[pos] = 0; pos += 1
    memcpy(buf + pos, rg_p, n_rg); pos += n_rg
    buf[pos] = 0; pos += 1
    memcpy(buf + pos, ri_p, n_ri); pos += n_ri
    buf[pos] = 0; pos += 1
    memcpy(buf + pos, type_p, n_type)
    cf_sha1(buf, total, digest)
    if buf != stack:
        free(buf)
    memcpy(text, b"task-", 5)
    for i in range(8):
        text[5 + 2 * i] = _HEX_DIGITS[digest[i] >> 4]
        text[6 + 2 * i] = _HEX_DIGITS[digest[i] & 15]
    return text[:21].decode("ascii")


def stable_task_id(column, row_group, row_index, task_type):
    """A task's stable id from its four fields, in DataDesigner's id format (computed in C)."""
    return stable_task_id_of(
        column if type(column) is str else format(column, ""),
        row_group,
        row_index,
        task_type if type(task_type) is str else format(task_type, ""),
    )


cdef object _make(object factory, int col, str column, object row_group, object row_index, str task_type):
    """A task as a cellfrontier Task, or as an instance of a foreign value class.

    A foreign class (another library's frozen dataclass, say) is instantiated without running
    its constructor: its ``__dict__`` is filled directly, which is several times cheaper and
    gives an object equal to one built normally.  ``factory`` is ``(cls, extra attributes,
    id key, registry, untrack)`` (see :meth:`TrackerCore.set_task_class`).
    """
    if factory is None:
        return _task(column, row_group, row_index, task_type)
    cls, extra, id_key, registry, untrack = <tuple>factory
    obj = cls.__new__(cls)
    attrs = {"column": column, "row_group": row_group, "row_index": row_index, "task_type": task_type}
    if extra:
        attrs.update(<dict>extra)
    if id_key is not None:
        task_id = stable_task_id_of(column, row_group, row_index, task_type)
        attrs[id_key] = task_id
        if registry is not None:
            (<dict>registry)[task_id] = (
                row_group,
                col,
                row_index if row_index is not None else (SCRATCH_ENTRY if task_type == FROM_SCRATCH else BATCH_ENTRY),
            )
    PyObject_GenericSetAttr(obj, "__dict__", attrs)
    if untrack and PyObject_IS_GC(obj):
        PyObject_GC_UnTrack(<void*>obj)
    return obj


@cython.final
cdef class FrontierDelta:
    """What one mutation did to the frontier: tasks ``added`` and tasks ``removed``.

    Tasks are materialised on first access; a caller that ignores the delta pays for two
    small integer buffers, never for Python objects.
    """

    cdef object _added
    cdef object _removed
    # Lazy form: (key, mask) pairs as recorded by the core, added entries first.
    cdef int64_t* _buf
    cdef Py_ssize_t _n_added      # entries
    cdef Py_ssize_t _n_removed
    cdef Py_ssize_t _count_added  # tasks
    cdef Py_ssize_t _count_removed
    cdef object _names
    cdef object _batch_types
    cdef object _row_group
    cdef object _factory

    def __cinit__(self):
        self._buf = NULL
        self._n_added = 0
        self._n_removed = 0

    def __init__(self, added=(), removed=()):
        self._added = tuple(added)
        self._removed = tuple(removed)
        self._count_added = len(self._added)
        self._count_removed = len(self._removed)

    def __dealloc__(self):
        if self._buf != NULL:
            free(self._buf)
            self._buf = NULL

    cdef tuple _decode(self, Py_ssize_t start, Py_ssize_t stop):
        cdef Py_ssize_t i
        cdef int64_t key, col, code
        cdef uint64_t mask
        out = []
        for i in range(start, stop):
            key = self._buf[2 * i]
            mask = <uint64_t>self._buf[2 * i + 1]
            col = key >> 32
            code = key & LOW32
            if code == BATCH_CODE:
                out.append(_make(self._factory, col, self._names[col], self._row_group, None, self._batch_types[col]))
            elif code == SCRATCH_CODE:
                out.append(_make(self._factory, col, self._names[col], self._row_group, None, FROM_SCRATCH))
            else:
                while mask:
                    out.append(_make(self._factory, col, self._names[col], self._row_group, 64 * code + cf_ctz(mask), CELL))
                    mask &= mask - 1
        return tuple(out)

    @property
    def added(self):
        """Tasks that entered the frontier (in topological column order, then row)."""
        if self._added is None:
            self._added = self._decode(0, self._n_added)
        return self._added

    @property
    def removed(self):
        """Tasks that left the frontier."""
        if self._removed is None:
            self._removed = self._decode(self._n_added, self._n_added + self._n_removed)
        return self._removed

    @property
    def num_added(self):
        """How many tasks entered the frontier (without building them)."""
        return self._count_added

    @property
    def num_removed(self):
        """How many tasks left the frontier (without building them)."""
        return self._count_removed

    @property
    def empty(self):
        """True when the mutation left the frontier unchanged."""
        return self._count_added == 0 and self._count_removed == 0

    def __bool__(self):
        return not self.empty

    def __eq__(self, other):
        if not isinstance(other, FrontierDelta):
            return NotImplemented
        return self.added == other.added and self.removed == other.removed

    def __hash__(self):
        return hash((self.added, self.removed))

    def __repr__(self):
        return f"FrontierDelta(added={self.added!r}, removed={self.removed!r})"

    def __reduce__(self):
        return (FrontierDelta, (self.added, self.removed))


# ----------------------------------------------------------------------------------------
# State of one row group


@cython.final
cdef class _Group:
    """Detailed state of one active row group (see the module docstring for the layout)."""

    cdef readonly object row_group
    cdef readonly int64_t n
    cdef readonly Py_ssize_t nw
    cdef readonly object bits
    cdef readonly object counts
    cdef readonly object flags
    cdef uint64_t* done
    cdef uint64_t* ready
    cdef uint64_t* dropped
    cdef int32_t* n_done
    cdef int32_t* n_resolved
    cdef int32_t* n_ready
    cdef int32_t* ready_from
    cdef uint8_t* batch_done
    cdef uint8_t* batch_ready
    cdef uint8_t* roots_added
    cdef uint8_t* scratch_ready
    cdef int64_t n_dropped
    cdef int64_t total_ready
    cdef bint in_heap
    cdef bint attached  # in TrackerCore.groups (a group is attached only by a call that succeeds)
    cdef bint newborn   # attached by the current call, zero rows: _birth() is still due

    def __init__(self, row_group, int64_t n, int num_columns, bits=None, counts=None, flags=None):
        cdef Py_ssize_t C = num_columns
        self.row_group = row_group
        self.n = n
        self.nw = (n + 63) // 64
        words = (2 * C + 1) * self.nw
        # Never hand a zero-length buffer to the kernels: keep at least one word.
        self.bits = np.zeros(max(words, 1), dtype=np.uint64) if bits is None else bits
        self.counts = np.zeros(max(4 * C, 1), dtype=np.int32) if counts is None else counts
        self.flags = np.zeros(max(4 * C, 1), dtype=np.uint8) if flags is None else flags
        cdef uint64_t[::1] b = self.bits
        cdef int32_t[::1] c = self.counts
        cdef uint8_t[::1] f = self.flags
        self.done = &b[0]
        self.ready = self.done + C * self.nw
        self.dropped = self.ready + C * self.nw
        self.n_done = &c[0]
        self.n_resolved = self.n_done + C
        self.n_ready = self.n_resolved + C
        self.ready_from = self.n_ready + C
        self.batch_done = &f[0]
        self.batch_ready = self.batch_done + C
        self.roots_added = self.batch_ready + C
        self.scratch_ready = self.roots_added + C
        self.in_heap = False
        self.attached = False
        self.newborn = False
        self.n_dropped = 0
        self.total_ready = 0
        cdef Py_ssize_t i
        for i in range(self.nw):
            self.n_dropped += cf_popcount(self.dropped[i])
        for i in range(C):
            self.total_ready += self.n_ready[i]

    @property
    def nbytes(self):
        return self.bits.nbytes + self.counts.nbytes + self.flags.nbytes

    @property
    def n_dropped_rows(self):
        return self.n_dropped


# ----------------------------------------------------------------------------------------
# The core


cdef class TrackerCore:
    """Completion bitmaps of every active row group plus the frontier, for one compiled graph.

    ``plan`` answers ``has_row_group(id)`` and ``row_group_size(id)``.  Row groups get their
    arrays when first touched and give them back in :meth:`compact`.
    """

    cdef readonly object names          # tuple[str, ...], topological order
    cdef readonly dict index            # name -> column id
    cdef readonly object plan
    cdef readonly bint dd_compat
    cdef int C
    cdef object _arrays                 # keeps the graph arrays alive
    cdef const uint8_t* is_batch
    cdef const uint8_t* is_root
    cdef const int32_t* down_ptr
    cdef const int32_t* down_idx
    cdef const int32_t* cup_ptr
    cdef const int32_t* cup_idx
    cdef const int32_t* bup_ptr
    cdef const int32_t* bup_idx
    cdef tuple _batch_types              # per column: "from_scratch" for roots, else "batch"
    cdef object _factory                 # None, or (foreign task class, extra attributes, ...)
    cdef object _delta_cls               # None, or the class mutations wrap their deltas in
    cdef object _empty_delta
    cdef readonly dict groups            # row group id -> _Group
    cdef readonly dict compacted         # row group id -> (size, dropped words as bytes)
    cdef readonly object compacted_completed   # int64[C]: cells completed in compacted groups
    cdef readonly object compacted_dropped     # int64[C]: rows dropped (and not completed) there
    cdef list _heap                      # min-heap of row group ids that may hold ready tasks
    cdef int64_t _compacted_bytes        # sum of the packed dropped rows kept in ``compacted``
    cdef int64_t* _added                 # (key, mask) pairs of the current event
    cdef Py_ssize_t _n_added             # entries (pairs)
    cdef Py_ssize_t _count_added         # tasks
    cdef Py_ssize_t _cap_added           # entries
    cdef int64_t* _removed
    cdef Py_ssize_t _n_removed
    cdef Py_ssize_t _count_removed
    cdef Py_ssize_t _cap_removed
    cdef uint64_t* _scratch
    cdef Py_ssize_t _cap_scratch

    def __cinit__(self):
        self._added = NULL
        self._removed = NULL
        self._scratch = NULL

    def __init__(self, compiled, plan, dd_compat=False):
        self.dd_compat = dd_compat
        self.names = tuple(compiled.names)
        self.index = dict(compiled.index)
        self.plan = plan
        self.C = len(self.names)
        arrays = tuple(
            np.ascontiguousarray(a)
            for a in (
                compiled.is_batch, compiled.is_root, compiled.down_ptr, compiled.down_idx,
                compiled.cell_up_ptr, compiled.cell_up_idx, compiled.batch_up_ptr, compiled.batch_up_idx,
            )
        )
        # Pad empty index arrays so that taking &a[0] is always valid.
        arrays = tuple(a if a.size else np.zeros(1, dtype=a.dtype) for a in arrays)
        self._arrays = arrays
        cdef const uint8_t[::1] u8
        cdef const int32_t[::1] i32
        u8 = arrays[0]; self.is_batch = &u8[0]
        u8 = arrays[1]; self.is_root = &u8[0]
        i32 = arrays[2]; self.down_ptr = &i32[0]
        i32 = arrays[3]; self.down_idx = &i32[0]
        i32 = arrays[4]; self.cup_ptr = &i32[0]
        i32 = arrays[5]; self.cup_idx = &i32[0]
        i32 = arrays[6]; self.bup_ptr = &i32[0]
        i32 = arrays[7]; self.bup_idx = &i32[0]
        self._batch_types = tuple(
            FROM_SCRATCH if compiled.is_root[i] and not dd_compat else BATCH for i in range(self.C)
        )
        self.groups = {}
        self.compacted = {}
        self.compacted_completed = np.zeros(self.C, dtype=np.int64)
        self.compacted_dropped = np.zeros(self.C, dtype=np.int64)
        self._heap = []
        self._factory = None
        self._delta_cls = None
        self._empty_delta = None
        self._reserve(64, 64)

    def set_task_class(self, cls, extra=None, id_key=None, registry=None, untrack=False):
        """Hand out tasks as instances of *cls* (filled through ``__dict__``), or Task if None.

        *extra* attributes are added to every instance's ``__dict__``.  With *id_key*, every
        instance also gets its stable task id (:func:`stable_task_id`) under that key, and, with
        *registry* (a dict), an entry ``id -> (row_group, column id, row)`` (row ``-1`` for a
        batch task, ``-2`` for a from-scratch one), so that :meth:`unready_ids` can take the
        tasks a scheduler acknowledges by id out of the frontier without hashing anything.

        With *untrack*, instances are taken out of the cyclic garbage collector's view.  Only
        for a class whose instances hold names and numbers and nothing else, so that they can
        never be part of a reference cycle: a scheduler keeps thousands of tasks alive at once,
        and every young collection would otherwise rescan them.
        """
        if registry is not None and not isinstance(registry, dict):
            raise TypeError(f"set_task_class() needs a dict registry, got {type(registry).__name__}")
        if id_key is not None and not isinstance(id_key, str):
            raise TypeError(f"set_task_class() needs a str id_key, got {id_key!r}")
        self._factory = (
            None if cls is None else (cls, dict(extra) if extra else None, id_key, registry, bool(untrack))
        )

    def set_delta_class(self, cls, empty=None):
        """Return every mutation's delta wrapped in an instance of *cls*, or the core's if None.

        The instance is made without running its constructor, with ``__dict__`` set to
        ``{"_core_delta": delta}``; a delta that changed nothing is returned as *empty*.  An
        adapter uses this to speak another library's delta type without a Python-level
        wrapper call per event.
        """
        self._delta_cls = cls
        self._empty_delta = empty

    def __dealloc__(self):
        free(self._added)
        free(self._removed)
        free(self._scratch)

    # -- buffers ------------------------------------------------------------------------

    cdef int _reserve(self, Py_ssize_t n_added, Py_ssize_t n_removed) except -1:
        """Make room for the worst-case delta of the next kernel, so kernels cannot fail.

        Sizes are in entries (a word of cells, or one full-column task), so that a bulk
        event's buffers grow with the words it can touch, not with its rows.
        """
        cdef void* p
        self._n_added = 0
        self._n_removed = 0
        self._count_added = 0
        self._count_removed = 0
        n_added += self.C  # room for _birth()'s zero-row check
        if n_added > self._cap_added:
            p = realloc(self._added, 2 * n_added * sizeof(int64_t))
            if p == NULL:
                raise MemoryError()
            self._added = <int64_t*>p
            self._cap_added = n_added
        if n_removed > self._cap_removed:
            p = realloc(self._removed, 2 * n_removed * sizeof(int64_t))
            if p == NULL:
                raise MemoryError()
            self._removed = <int64_t*>p
            self._cap_removed = n_removed
        return 0

    cdef uint64_t* _scratch_words(self, Py_ssize_t nw) except NULL:
        cdef void* p
        if nw < 1:
            nw = 1
        if nw > self._cap_scratch:
            p = realloc(self._scratch, nw * sizeof(uint64_t))
            if p == NULL:
                raise MemoryError()
            self._scratch = <uint64_t*>p
            self._cap_scratch = nw
        memset(self._scratch, 0, nw * sizeof(uint64_t))
        return self._scratch

    cdef inline void _rec_added_word(self, int64_t col, int64_t code, uint64_t mask) noexcept:
        self._added[2 * self._n_added] = (col << 32) | code
        self._added[2 * self._n_added + 1] = <int64_t>mask
        self._n_added += 1
        self._count_added += cf_popcount(mask)

    cdef inline void _rec_removed_word(self, int64_t col, int64_t code, uint64_t mask) noexcept:
        self._removed[2 * self._n_removed] = (col << 32) | code
        self._removed[2 * self._n_removed + 1] = <int64_t>mask
        self._n_removed += 1
        self._count_removed += cf_popcount(mask)

    cdef inline void _rec_added(self, int64_t col, int64_t row) noexcept:
        """Record one task: a cell row, or BATCH_ROW / SCRATCH_ROW."""
        if row == BATCH_ROW:
            self._rec_added_word(col, BATCH_CODE, 1)
        elif row == SCRATCH_ROW:
            self._rec_added_word(col, SCRATCH_CODE, 1)
        else:
            self._rec_added_word(col, row >> 6, (<uint64_t>1) << (row & 63))

    cdef inline void _rec_removed(self, int64_t col, int64_t row) noexcept:
        if row == BATCH_ROW:
            self._rec_removed_word(col, BATCH_CODE, 1)
        elif row == SCRATCH_ROW:
            self._rec_removed_word(col, SCRATCH_CODE, 1)
        else:
            self._rec_removed_word(col, row >> 6, (<uint64_t>1) << (row & 63))

    cdef FrontierDelta _delta(self, _Group g):
        """Package the recorded entries as a delta and register the group as ready if needed.

        The shared entry buffers are copied before any Python object is allocated: an
        allocation may run the garbage collector, whose finalizers may switch threads, and
        another thread's event would then overwrite the buffers.
        """
        cdef FrontierDelta d
        cdef Py_ssize_t total, i
        cdef Py_ssize_t n_added, n_removed, count_added, count_removed
        cdef int64_t* buf = NULL
        if g.newborn:
            self._birth(g)
        n_added = self._n_added
        n_removed = self._n_removed
        count_added = self._count_added
        count_removed = self._count_removed
        total = n_added + n_removed
        if total:
            buf = <int64_t*>malloc(2 * total * sizeof(int64_t))
            if buf == NULL:
                raise MemoryError()
            for i in range(2 * n_added):
                buf[i] = self._added[i]
            for i in range(2 * n_removed):
                buf[2 * n_added + i] = self._removed[i]
        if g.total_ready > 0 and not g.in_heap:
            heapq.heappush(self._heap, g.row_group)
            g.in_heap = True
        d = FrontierDelta.__new__(FrontierDelta)  # from here on, other threads may run
        d._n_added = n_added
        d._n_removed = n_removed
        d._count_added = count_added
        d._count_removed = count_removed
        if total:
            d._buf = buf
            d._names = self.names
            d._batch_types = self._batch_types
            d._factory = self._factory
            d._row_group = g.row_group
        else:
            d._added = ()
            d._removed = ()
        return d

    cdef object _result(self, _Group g):
        """The delta of the current event, as the caller asked for it (see set_delta_class)."""
        cdef FrontierDelta d = self._delta(g)
        if self._delta_cls is None:
            return d
        if d._count_added == 0 and d._count_removed == 0:
            return self._empty_delta
        obj = self._delta_cls.__new__(self._delta_cls)
        PyObject_GenericSetAttr(obj, "__dict__", {"_core_delta": d})
        return obj

    cdef _Group _commit(self, _Group g):
        """Register a group created by the current call, once every argument is validated.

        :meth:`_group` creates a group without registering it, so that a call rejected by a
        later check (row index, size) leaves no trace.  Registration is one ``setdefault``, so
        when two threads create the same group (validation may run Python code, and so switch
        threads), both use the one registered first and no update is lost.  Returns the
        registered group; callers must use it from here on.
        """
        if g.attached:
            return g
        cdef _Group registered = self.groups.setdefault(g.row_group, g)
        if registered is g:
            g.attached = True
            g.newborn = g.n == 0 and not self.dd_compat
        return registered

    cdef void _birth(self, _Group g):
        """First event of a zero-row group: its vacuously ready full-column tasks enter.

        A group of zero rows has every cell column vacuously resolved, so its full-column
        tasks without full-column upstreams are ready from the start: no cell event will ever
        make them ready.  Runs once, from the delta of the call that registered the group.
        """
        cdef int c
        cdef Py_ssize_t i, j
        cdef int64_t key, mask
        g.newborn = False
        for c in range(self.C):
            if self.is_batch[c] and not self.is_root[c]:
                self._check_batch(g, c)
        # Keep the delta in column order (insertion sort of a handful of entries).
        for i in range(1, self._n_added):
            key = self._added[2 * i]
            mask = self._added[2 * i + 1]
            j = i - 1
            while j >= 0 and self._added[2 * j] > key:
                self._added[2 * j + 2] = self._added[2 * j]
                self._added[2 * j + 3] = self._added[2 * j + 1]
                j -= 1
            self._added[2 * j + 2] = key
            self._added[2 * j + 3] = mask

    # -- validation helpers -------------------------------------------------------------

    cdef inline int _column(self, column, str method) except -1:
        cdef object cid = None
        if type(column) is str or isinstance(column, str):  # an unhashable name must not reach dict.get()
            cid = self.index.get(column)
        if cid is None:
            raise UnknownColumnError(f"{method}() got unknown column {column!r} (expected one of {_names_hint(self.names)})")
        return <int>cid

    cdef object _row_group_key(self, row_group, str method):
        """The row group id as a plain int, after checking its type and plan membership."""
        if type(row_group) is not int:
            if isinstance(row_group, (bool, np.bool_)) or not isinstance(row_group, (int, np.integer)):
                raise IndexTypeError(
                    f"{method}() needs an integer row group, got {type(row_group).__name__} {row_group!r}"
                )
            row_group = int(row_group)
        if not self.plan.has_row_group(row_group):
            raise UnknownRowGroupError(
                f"{method}() got unknown row group {row_group!r} (expected a row group of the plan: "
                f"{_plan_hint(self.plan)})"
            )
        return row_group

    cdef _Group _group(self, row_group, str method):
        """The active group for a mutation, created on first touch."""
        cdef _Group g
        if type(row_group) is int:
            g = self.groups.get(row_group)
            if g is not None:
                return g
        key = self._row_group_key(row_group, method)
        g = self.groups.get(key)
        if g is not None:
            return g
        if key in self.compacted and not self.dd_compat:
            raise RowGroupCompactedError(f"{method}() got row group {key!r}, which was already compacted")
        size = self.plan.row_group_size(key)
        return _Group(key, size, self.C)  # registered by _commit() once the call is validated

    cdef _Group _existing_group(self, row_group, str method):
        """The active group for a query, or None when the group has no detailed state."""
        cdef _Group g
        if type(row_group) is int:
            g = self.groups.get(row_group)
            if g is not None:
                return g
        key = self._row_group_key(row_group, method)
        return self.groups.get(key)

    cdef int64_t _row(self, _Group g, row_index, str method) except -1:
        cdef int overflow = 0
        cdef long long r
        if type(row_index) is not int:
            if isinstance(row_index, (bool, np.bool_)) or not isinstance(row_index, (int, np.integer)):
                raise IndexTypeError(
                    f"{method}() needs an integer row index, got {type(row_index).__name__} {row_index!r}"
                )
            row_index = int(row_index)
        r = PyLong_AsLongLongAndOverflow(row_index, &overflow)
        if overflow or r < 0 or r >= g.n:
            raise RowIndexError(
                f"{method}() got row index {row_index!r} outside row group "
                f"{g.row_group!r} of size {g.n} (expected 0 <= row_index < {g.n})"
            )
        return r

    cdef object _rows(self, _Group g, rows, str method):
        """Validate a bulk row array: 1-D, integer dtype, every value in range."""
        if isinstance(rows, np.ma.MaskedArray):  # its mask would be silently ignored
            raise IndexTypeError(f"{method}() needs a plain array of row indices, not a masked array")
        try:
            arr = np.asarray(rows)
        except (TypeError, ValueError) as exc:  # a ragged nested list, say
            raise IndexTypeError(f"{method}() needs a 1-D array of row indices: {exc}") from None
        if arr.ndim != 1:
            raise IndexTypeError(f"{method}() needs a 1-D array of row indices, got {arr.ndim}-D")
        if arr.size == 0 and not isinstance(rows, np.ndarray):
            return np.zeros(0, dtype=np.int64)  # an empty list or tuple has no dtype to check
        if arr.dtype.kind not in "iu":
            raise IndexTypeError(f"{method}() needs integer row indices, got dtype {arr.dtype}")
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        lo = arr.min()
        hi = arr.max()
        if lo < 0 or hi >= g.n:
            bad = lo if lo < 0 else hi
            raise RowIndexError(
                f"{method}() got row index {int(bad)!r} outside row group {g.row_group!r} "
                f"of size {g.n} (expected 0 <= row_index < {g.n})"
            )
        return np.ascontiguousarray(arr, dtype=np.int64)

    cdef int _check_size(self, _Group g, row_group_size, str method) except -1:
        if isinstance(row_group_size, (bool, np.bool_)) or not isinstance(row_group_size, (int, np.integer)):
            raise IndexTypeError(f"{method}() needs an integer row_group_size, got {row_group_size!r}")
        if row_group_size != g.n:
            raise SizeMismatchError(
                f"{method}() got row_group_size {row_group_size!r} for row group {g.row_group!r}, "
                f"whose size is {g.n}"
            )
        return 0

    cdef Py_ssize_t _max_fanout_entries(self, int c, _Group g):
        """Delta entries a bulk event on column *c* can add: per downstream column, one entry
        per bitmap word (cells) or one (its full-column task)."""
        return (self.down_ptr[c + 1] - self.down_ptr[c]) * (g.nw + 1) + 1

    # -- kernels ------------------------------------------------------------------------

    cdef inline bint _batch_ups_done(self, _Group g, int d) noexcept:
        cdef int32_t k
        for k in range(self.bup_ptr[d], self.bup_ptr[d + 1]):
            if not g.batch_done[self.bup_idx[k]]:
                return False
        return True

    cdef inline void _unready_cell(self, _Group g, int c, Py_ssize_t w, uint64_t bit, int64_t r) noexcept:
        """Take cell (c, r) out of the frontier if it is there, recording the removal."""
        if g.ready[c * g.nw + w] & bit:
            g.ready[c * g.nw + w] &= ~bit
            g.n_ready[c] -= 1
            g.total_ready -= 1
            self._rec_removed(c, r)

    cdef inline void _acknowledge(self, _Group g, int64_t c, int64_t r) noexcept:
        """Take a handed-out task out of the frontier without recording a removal.

        *r* is a row, ``-1`` for a batch task or ``-2`` (``SCRATCH_ENTRY``) for a
        from-scratch task; the caller has checked *c* and *r* against *g*.
        """
        cdef uint8_t* flag
        cdef uint64_t bit
        if r < 0:
            flag = g.scratch_ready if r == SCRATCH_ENTRY else g.batch_ready
            if flag[c]:
                flag[c] = 0
                g.n_ready[c] -= 1
                g.total_ready -= 1
        else:
            bit = (<uint64_t>1) << (r & 63)
            if g.ready[c * g.nw + (r >> 6)] & bit:
                g.ready[c * g.nw + (r >> 6)] &= ~bit
                g.n_ready[c] -= 1
                g.total_ready -= 1

    cdef void _check_batch(self, _Group g, int d) noexcept:
        """Make full-column task *d* ready if every dependency is satisfied."""
        cdef int32_t k
        if g.batch_done[d] or g.batch_ready[d]:
            return
        if not self._batch_ups_done(g, d):
            return
        for k in range(self.cup_ptr[d], self.cup_ptr[d + 1]):
            if g.n_resolved[self.cup_idx[k]] != g.n:
                return
        g.batch_ready[d] = 1
        g.n_ready[d] += 1
        g.total_ready += 1
        self._rec_added(d, -1)

    cdef void _check_cell(self, _Group g, int d, int64_t r) noexcept:
        """Make cell task (d, r) ready if every dependency is satisfied."""
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w = r >> 6
        cdef uint64_t bit = (<uint64_t>1) << (r & 63)
        cdef int32_t k
        if (g.done[d * nw + w] | g.ready[d * nw + w] | g.dropped[w]) & bit:
            return
        if not self._batch_ups_done(g, d):
            return
        for k in range(self.cup_ptr[d], self.cup_ptr[d + 1]):
            if not (g.done[self.cup_idx[k] * nw + w] & bit):
                return
        g.ready[d * nw + w] |= bit
        if w < g.ready_from[d]:
            g.ready_from[d] = <int32_t>w
        g.n_ready[d] += 1
        g.total_ready += 1
        self._rec_added(d, r)

    cdef void _k_mark_cell(self, _Group g, int c, int64_t r) noexcept:
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w = r >> 6
        cdef uint64_t bit = (<uint64_t>1) << (r & 63)
        cdef int32_t k
        cdef int d
        if g.done[c * nw + w] & bit:
            # Done already; a copy put back with add_ready_tasks() still leaves the frontier.
            self._unready_cell(g, c, w, bit, r)
            return
        g.done[c * nw + w] |= bit
        g.n_done[c] += 1
        self._unready_cell(g, c, w, bit, r)
        if g.dropped[w] & bit:
            return  # already counted as resolved; a dropped row unblocks no cell
        g.n_resolved[c] += 1
        for k in range(self.down_ptr[c], self.down_ptr[c + 1]):
            d = self.down_idx[k]
            if self.is_batch[d]:
                if g.n_resolved[c] == g.n:
                    self._check_batch(g, d)
            else:
                self._check_cell(g, d, r)

    cdef void _release_cells(self, _Group g, int d, const uint64_t* candidates) noexcept:
        """Make ready every cell of *d* flagged in *candidates* whose dependencies are done."""
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w
        cdef int32_t k
        cdef uint64_t cand, word
        if not self._batch_ups_done(g, d):
            return
        for w in range(nw):
            cand = candidates[w] & ~g.dropped[w] & ~g.done[d * nw + w] & ~g.ready[d * nw + w]
            if not cand:
                continue
            for k in range(self.cup_ptr[d], self.cup_ptr[d + 1]):
                cand &= g.done[self.cup_idx[k] * nw + w]
            if not cand:
                continue
            g.ready[d * nw + w] |= cand
            if w < g.ready_from[d]:
                g.ready_from[d] = <int32_t>w
            g.n_ready[d] += cf_popcount(cand)
            g.total_ready += cf_popcount(cand)
            self._rec_added_word(d, w, cand)

    cdef void _k_mark_cells(self, _Group g, int c, uint64_t* mask) noexcept:
        """Bulk form of _k_mark_cell: *mask* holds the rows to mark (overwritten)."""
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w
        cdef int32_t k
        cdef int d
        cdef uint64_t newly, rem, word
        cdef int64_t n_new = 0, n_new_live = 0
        for w in range(nw):
            rem = g.ready[c * nw + w] & mask[w]  # every marked row leaves the frontier
            newly = mask[w] & ~g.done[c * nw + w]
            mask[w] = newly
            g.done[c * nw + w] |= newly
            n_new += cf_popcount(newly)
            n_new_live += cf_popcount(newly & ~g.dropped[w])
            if rem:
                g.ready[c * nw + w] &= ~rem
                g.n_ready[c] -= cf_popcount(rem)
                g.total_ready -= cf_popcount(rem)
                self._rec_removed_word(c, w, rem)
        if n_new == 0:
            return
        g.n_done[c] += n_new
        g.n_resolved[c] += n_new_live
        for k in range(self.down_ptr[c], self.down_ptr[c + 1]):
            d = self.down_idx[k]
            if self.is_batch[d]:
                if n_new_live and g.n_resolved[c] == g.n:
                    self._check_batch(g, d)
            else:
                self._release_cells(g, d, mask)

    cdef void _k_mark_range(self, _Group g, int c, uint64_t* all_rows) noexcept:
        """Complete the batch of full-column *c*: every row done, downstreams re-checked."""
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w
        cdef int32_t k
        cdef int d
        cdef uint64_t newly
        cdef int64_t n_new = 0, n_new_live = 0
        if g.batch_ready[c]:  # even when done already (put back with add_ready_tasks())
            g.batch_ready[c] = 0
            g.n_ready[c] -= 1
            g.total_ready -= 1
            self._rec_removed(c, -1)
        if g.batch_done[c]:
            return
        g.batch_done[c] = 1
        for w in range(nw):
            all_rows[w] = _tail_mask(g.n, w, nw)
            newly = all_rows[w] & ~g.done[c * nw + w]
            g.done[c * nw + w] |= newly
            n_new += cf_popcount(newly)
            n_new_live += cf_popcount(newly & ~g.dropped[w])
        g.n_done[c] += n_new
        g.n_resolved[c] += n_new_live
        for k in range(self.down_ptr[c], self.down_ptr[c + 1]):
            d = self.down_idx[k]
            if self.is_batch[d]:
                self._check_batch(g, d)
            else:
                self._release_cells(g, d, all_rows)

    cdef void _k_drop_row(self, _Group g, int64_t r) noexcept:
        """Drop row *r*: O(columns + fan-out), touching only the row's word of each bitmap.

        Same effect as :meth:`_k_drop_rows` on a one-row mask, without its walk over every
        word of the group.
        """
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w = r >> 6
        cdef uint64_t bit = (<uint64_t>1) << (r & 63)
        cdef bint newly = not (g.dropped[w] & bit)
        cdef int c, d
        cdef int32_t k
        if newly:
            g.n_dropped += 1
        for c in range(self.C):
            self._unready_cell(g, c, w, bit, r)
            if newly and not (g.done[c * nw + w] & bit):
                g.n_resolved[c] += 1
                # Only a column that just became fully resolved can unblock a full-column task.
                if g.n_resolved[c] == g.n:
                    for k in range(self.down_ptr[c], self.down_ptr[c + 1]):
                        d = self.down_idx[k]
                        if self.is_batch[d]:
                            self._check_batch(g, d)
        g.dropped[w] |= bit

    cdef void _k_drop_rows(self, _Group g, uint64_t* mask) noexcept:
        """Drop every row flagged in *mask* (overwritten with the newly dropped rows).

        Ready tasks of every flagged row leave the frontier, even of a row dropped before (a
        task put back with ``add_ready_tasks()``); counters move only for newly dropped rows.
        """
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w
        cdef int c, d
        cdef int32_t k
        cdef int64_t n_new = 0, resolved
        cdef uint64_t rem, word
        for w in range(nw):
            n_new += cf_popcount(mask[w] & ~g.dropped[w])
        g.n_dropped += n_new
        for c in range(self.C):
            resolved = 0
            for w in range(nw):
                if not mask[w]:
                    continue
                rem = g.ready[c * nw + w] & mask[w]
                if rem:
                    g.ready[c * nw + w] &= ~rem
                    g.n_ready[c] -= cf_popcount(rem)
                    g.total_ready -= cf_popcount(rem)
                    self._rec_removed_word(c, w, rem)
                if n_new:
                    resolved += cf_popcount(mask[w] & ~g.dropped[w] & ~g.done[c * nw + w])
            g.n_resolved[c] += resolved
            # Only a column that just became fully resolved can unblock a full-column task.
            if resolved and g.n_resolved[c] == g.n:
                for k in range(self.down_ptr[c], self.down_ptr[c + 1]):
                    d = self.down_idx[k]
                    if self.is_batch[d]:
                        self._check_batch(g, d)
        for w in range(nw):
            mask[w] &= ~g.dropped[w]
            g.dropped[w] |= mask[w]

    cdef void _k_add_roots(self, _Group g, int c) noexcept:
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w
        cdef uint64_t cand, word
        if g.roots_added[c]:
            return
        g.roots_added[c] = 1
        if self.is_batch[c]:
            if not g.batch_done[c] and not g.batch_ready[c]:
                g.batch_ready[c] = 1
                g.n_ready[c] += 1
                g.total_ready += 1
                self._rec_added(c, -1)
            return
        for w in range(nw):
            cand = _tail_mask(g.n, w, nw) & ~g.done[c * nw + w] & ~g.dropped[w] & ~g.ready[c * nw + w]
            if not cand:
                continue
            g.ready[c * nw + w] |= cand
            if w < g.ready_from[c]:
                g.ready_from[c] = <int32_t>w
            g.n_ready[c] += cf_popcount(cand)
            g.total_ready += cf_popcount(cand)
            self._rec_added_word(c, w, cand)

    # -- DataDesigner-compatible kernels (see the module docstring) ----------------------

    cdef void _kc_mark_cell(self, _Group g, int c, int64_t r) noexcept:
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w = r >> 6
        cdef uint64_t bit = (<uint64_t>1) << (r & 63)
        cdef int32_t k
        cdef int d
        if not (g.done[c * nw + w] & bit):
            g.done[c * nw + w] |= bit
            g.n_done[c] += 1
            if not (g.dropped[w] & bit):
                g.n_resolved[c] += 1
        self._unready_cell(g, c, w, bit, r)
        for k in range(self.down_ptr[c], self.down_ptr[c + 1]):
            d = self.down_idx[k]
            if self.is_batch[d]:
                self._check_batch(g, d)
            else:
                self._check_cell(g, d, r)

    cdef void _kc_mark_range(self, _Group g, int c, uint64_t* all_rows) noexcept:
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w
        cdef int32_t k
        cdef int d
        cdef uint64_t newly
        g.batch_done[c] = 1
        if g.batch_ready[c]:
            g.batch_ready[c] = 0
            g.n_ready[c] -= 1
            g.total_ready -= 1
            self._rec_removed(c, BATCH_ROW)
        for w in range(nw):
            all_rows[w] = _tail_mask(g.n, w, nw)
            newly = all_rows[w] & ~g.done[c * nw + w]
            g.done[c * nw + w] |= newly
            g.n_done[c] += cf_popcount(newly)
            g.n_resolved[c] += cf_popcount(newly & ~g.dropped[w])
        for k in range(self.down_ptr[c], self.down_ptr[c + 1]):
            d = self.down_idx[k]
            if self.is_batch[d]:
                self._check_batch(g, d)
            else:
                self._release_cells(g, d, all_rows)

    cdef void _kc_drop_row(self, _Group g, int64_t r) noexcept:
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w = r >> 6
        cdef uint64_t bit = (<uint64_t>1) << (r & 63)
        cdef int c
        if not (g.dropped[w] & bit):
            g.dropped[w] |= bit
            g.n_dropped += 1
            for c in range(self.C):
                if not (g.done[c * nw + w] & bit):
                    g.n_resolved[c] += 1
        for c in range(self.C):
            self._unready_cell(g, c, w, bit, r)
        for c in range(self.C):
            if self.is_batch[c]:
                self._check_batch(g, c)

    cdef void _kc_add_column_tasks(self, _Group g, int c) noexcept:
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w
        cdef uint64_t cand, word
        if self.is_batch[c]:
            if not g.scratch_ready[c]:
                g.scratch_ready[c] = 1
                g.n_ready[c] += 1
                g.total_ready += 1
                self._rec_added(c, SCRATCH_ROW)
            return
        for w in range(nw):
            cand = _tail_mask(g.n, w, nw) & ~g.ready[c * nw + w]
            if not cand:
                continue
            g.ready[c * nw + w] |= cand
            if w < g.ready_from[c]:
                g.ready_from[c] = <int32_t>w
            g.n_ready[c] += cf_popcount(cand)
            g.total_ready += cf_popcount(cand)
            self._rec_added_word(c, w, cand)

    # -- mutations ----------------------------------------------------------------------

    def mark_cell(self, column, row_group, row_index):
        """Mark one cell of a cell-by-cell column complete."""
        cdef int c = self._column(column, "mark_cell_complete")
        if self.is_batch[c]:
            raise StrategyMismatchError(
                f"mark_cell_complete() needs a cell_by_cell column, but {column!r} is full_column "
                "(use mark_row_range_complete())"
            )
        cdef _Group g = self._group(row_group, "mark_cell_complete")
        cdef int64_t r = self._row(g, row_index, "mark_cell_complete")
        g = self._commit(g)
        self._reserve(self.down_ptr[c + 1] - self.down_ptr[c] + 1, 1)
        if self.dd_compat:
            self._kc_mark_cell(g, c, r)
        else:
            self._k_mark_cell(g, c, r)
        return self._result(g)

    def mark_range(self, column, row_group, row_group_size):
        """Mark the whole row range of a full-column column complete."""
        cdef int c = self._column(column, "mark_row_range_complete")
        if not self.is_batch[c]:
            raise StrategyMismatchError(
                f"mark_row_range_complete() needs a full_column column, but {column!r} is cell_by_cell "
                "(use mark_cell_complete() or mark_cells_complete())"
            )
        cdef _Group g = self._group(row_group, "mark_row_range_complete")
        self._check_size(g, row_group_size, "mark_row_range_complete")
        g = self._commit(g)
        cdef uint64_t* scratch = self._scratch_words(g.nw)
        self._reserve(self._max_fanout_entries(c, g), 1)  # removes at most its own batch task
        if self.dd_compat:
            self._kc_mark_range(g, c, scratch)
        else:
            self._k_mark_range(g, c, scratch)
        return self._result(g)

    def mark_cells(self, column, row_group, rows):
        """Bulk: mark many cells of one cell-by-cell column in one row group (all or nothing)."""
        cdef int c = self._column(column, "mark_cells_complete")
        if self.is_batch[c]:
            raise StrategyMismatchError(
                f"mark_cells_complete() needs a cell_by_cell column, but {column!r} is full_column"
            )
        cdef _Group g = self._group(row_group, "mark_cells_complete")
        arr = self._rows(g, rows, "mark_cells_complete")
        g = self._commit(g)
        cdef const int64_t[::1] rv = arr
        cdef uint64_t* mask = self._scratch_words(g.nw)
        cdef Py_ssize_t i
        for i in range(rv.shape[0]):
            mask[rv[i] >> 6] |= (<uint64_t>1) << (rv[i] & 63)
        self._reserve(self._max_fanout_entries(c, g), g.nw + 1)  # removes: one entry per word of c
        self._k_mark_cells(g, c, mask)
        return self._result(g)

    def drop_row(self, row_group, row_index):
        """Drop one row: its cells leave the frontier; full-column tasks may become ready."""
        cdef _Group g = self._group(row_group, "drop_row")
        cdef int64_t r = self._row(g, row_index, "drop_row")
        g = self._commit(g)
        self._reserve(self.C + 1, self.C + 1)  # one entry per column at most, either way
        if self.dd_compat:
            self._kc_drop_row(g, r)
        else:
            self._k_drop_row(g, r)
        return self._result(g)

    def drop_rows(self, row_group, rows):
        """Bulk: drop many rows of one row group (all or nothing)."""
        cdef _Group g = self._group(row_group, "drop_rows")
        arr = self._rows(g, rows, "drop_rows")
        g = self._commit(g)
        cdef const int64_t[::1] rv = arr
        cdef uint64_t* mask = self._scratch_words(g.nw)
        cdef Py_ssize_t i
        for i in range(rv.shape[0]):
            mask[rv[i] >> 6] |= (<uint64_t>1) << (rv[i] & 63)
        self._reserve(self.C + 1, self.C * (g.nw + 1) + 1)  # removes: one entry per (column, word)
        self._k_drop_rows(g, mask)
        return self._result(g)

    def add_roots(self, row_group, row_group_size, columns=None):
        """Admit a row group: root tasks (all roots, or the given root columns) become ready."""
        cdef _Group g
        cdef list ids = []
        cdef int c
        if columns is None:
            ids = [i for i in range(self.C) if self.is_root[i]]
        else:
            if isinstance(columns, str):
                raise InvalidArgumentError("add_root_tasks() needs a sequence of column names, not a single str")
            try:
                columns = list(columns)
            except TypeError:
                raise InvalidArgumentError(
                    f"add_root_tasks() needs a sequence of column names or None, got {type(columns).__name__}"
                ) from None
            for name in columns:
                c = self._column(name, "add_root_tasks")
                if not self.is_root[c] and not self.dd_compat:
                    raise InvalidArgumentError(
                        f"add_root_tasks() got column {name!r}, which has dependencies (not a root)"
                    )
                ids.append(c)
        g = self._group(row_group, "add_root_tasks")
        self._check_size(g, row_group_size, "add_root_tasks")
        g = self._commit(g)
        self._reserve(len(ids) * (g.nw + 1) + 1, 1)  # one entry per word (cells) or task (batch)
        for c in ids:
            if self.dd_compat:
                self._kc_add_column_tasks(g, c)
            else:
                self._k_add_roots(g, c)
        return self._result(g)

    def set_ready(self, column, row_group, row_index, bint ready, bint scratch=False):
        """Put one task into the frontier (``ready``) or take it out; returns True on change.

        ``scratch`` selects the from-scratch entry of a full-column column (compatible mode).
        """
        cdef str method = "add_ready_tasks" if ready else "mark_enqueued"
        cdef int c = self._column(column, method)
        cdef _Group g
        cdef int64_t r
        cdef Py_ssize_t w
        cdef uint64_t bit
        cdef uint8_t* flag
        if ready:
            g = self._group(row_group, method)
        else:
            g = self._existing_group(row_group, method)
            if g is None:
                return False
        if row_index is None:
            if not self.is_batch[c]:
                raise StrategyMismatchError(f"{method}() got a task for cell_by_cell column {column!r} without a row_index")
            if not g.attached:
                g = self._commit(g)
                if g.newborn:
                    self._reserve(1, 1)
                    self._birth(g)
                    if bool((g.scratch_ready if scratch else g.batch_ready)[c]) == ready:
                        return True  # the zero-row birth made it ready: added by this call
            flag = g.scratch_ready if scratch else g.batch_ready
            if bool(flag[c]) == ready:
                return False
            flag[c] = ready
            g.n_ready[c] += 1 if ready else -1
            g.total_ready += 1 if ready else -1
        else:
            if self.is_batch[c]:
                raise StrategyMismatchError(f"{method}() got a task for full_column column {column!r} with a row_index")
            r = self._row(g, row_index, method)
            w = r >> 6
            bit = (<uint64_t>1) << (r & 63)
            if not g.attached:
                g = self._commit(g)
                if g.newborn:
                    self._reserve(1, 1)
                    self._birth(g)
            if bool(g.ready[c * g.nw + w] & bit) == ready:
                return False
            if ready:
                g.ready[c * g.nw + w] |= bit
                if w < g.ready_from[c]:
                    g.ready_from[c] = <int32_t>w
            else:
                g.ready[c * g.nw + w] &= ~bit
            g.n_ready[c] += 1 if ready else -1
            g.total_ready += 1 if ready else -1
        if g.total_ready > 0 and not g.in_heap:
            heapq.heappush(self._heap, g.row_group)
            g.in_heap = True
        return True

    def unready_objects(self, tasks):
        """Take handed-out tasks (any objects with ``column``, ``row_group``, ``row_index`` and
        ``task_type``) out of the frontier; tasks not in the frontier are skipped.

        Every task is validated before any bit changes, like :meth:`set_ready`.
        """
        cdef list checked = []
        cdef int c
        cdef _Group g
        cdef int64_t r
        for t in tasks:
            c = self._column(t.column, "mark_enqueued")
            g = self._existing_group(t.row_group, "mark_enqueued")
            if g is None:
                continue
            if t.row_index is None:
                if not self.is_batch[c]:
                    raise StrategyMismatchError(
                        f"mark_enqueued() got a task for cell_by_cell column {t.column!r} without a row_index"
                    )
                checked.append((g, c, -1 if t.task_type != FROM_SCRATCH else -2))
            else:
                if self.is_batch[c]:
                    raise StrategyMismatchError(
                        f"mark_enqueued() got a task for full_column column {t.column!r} with a row_index"
                    )
                r = self._row(g, t.row_index, "mark_enqueued")
                checked.append((g, c, r))
        for g, c, r in checked:
            self._acknowledge(g, c, r)

    def unready_ids(self, task_ids, dict registry):
        """Take the tasks registered under *task_ids* out of *registry* and out of the frontier.

        *registry* holds the entries :meth:`set_task_class` makes.  Entries of groups that
        hold no state any more are dropped silently; an entry that is not of that form is left
        to the caller like an unknown id.  Returns the ids that were not resolved.
        """
        cdef list missing = []
        cdef _Group g
        cdef int64_t c, r
        cdef int overflow = 0
        for task_id in task_ids:
            entry = registry.pop(task_id, None)
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
            c = PyLong_AsLongLongAndOverflow(column, &overflow)
            r = PyLong_AsLongLongAndOverflow(row, &overflow)
            if overflow or c < 0 or c >= self.C or r < SCRATCH_ENTRY or r >= g.n:
                missing.append(task_id)
                continue
            if r < 0:
                if not self.is_batch[c]:
                    missing.append(task_id)
                    continue
                self._acknowledge(g, c, r)
            elif self.is_batch[c]:
                missing.append(task_id)
            else:
                self._acknowledge(g, c, r)
        return missing

    def rebuild_frontier(self, row_group):
        """Make ready again every task whose dependencies are satisfied and that is not done.

        Used after a restore: tasks that had been handed out but not completed come back;
        tasks already in the frontier stay; root tasks only where the group was admitted.
        """
        cdef _Group g = self._commit(self._group(row_group, "rebuild_frontier"))
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w
        cdef int c
        cdef uint64_t* all_rows = self._scratch_words(nw)
        for w in range(nw):
            all_rows[w] = _tail_mask(g.n, w, nw)
        self._reserve(self.C * (g.nw + 1) + 1, 1)
        for c in range(self.C):
            if self.is_root[c]:
                if g.roots_added[c]:
                    g.roots_added[c] = 0
                    self._k_add_roots(g, c)
            elif self.is_batch[c]:
                self._check_batch(g, c)
            else:
                self._release_cells(g, c, all_rows)
        return self._result(g)

    # -- handing out the frontier -------------------------------------------------------

    cdef list _collect(self, _Group g, Py_ssize_t limit, bint take, list out):
        """Append up to *limit* ready tasks of *g* to *out* in (column, row) order."""
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w, left
        cdef int c
        cdef uint64_t word, bit
        cdef str name
        for c in range(self.C):
            if limit <= 0:
                break
            if g.n_ready[c] == 0:
                continue
            name = self.names[c]
            if self.is_batch[c]:
                if g.scratch_ready[c] and limit > 0:
                    out.append(_make(self._factory, c, name, g.row_group, None, FROM_SCRATCH))
                    limit -= 1
                    if take:
                        g.scratch_ready[c] = 0
                        g.n_ready[c] -= 1
                        g.total_ready -= 1
                if g.batch_ready[c] and limit > 0:
                    out.append(_make(self._factory, c, name, g.row_group, None, self._batch_types[c]))
                    limit -= 1
                    if take:
                        g.batch_ready[c] = 0
                        g.n_ready[c] -= 1
                        g.total_ready -= 1
                continue
            left = g.n_ready[c]
            w = self._first_ready_word(g, c)
            while w < nw and left > 0 and limit > 0:
                word = g.ready[c * nw + w]
                while word and limit > 0:
                    bit = word & (~word + 1)
                    out.append(_make(self._factory, c, name, g.row_group, 64 * w + cf_ctz(word), CELL))
                    word ^= bit
                    limit -= 1
                    left -= 1
                    if take:
                        g.ready[c * nw + w] &= ~bit
                        g.n_ready[c] -= 1
                        g.total_ready -= 1
                w += 1
        return out

    cdef inline Py_ssize_t _first_ready_word(self, _Group g, int c) noexcept:
        """The first word of cell column *c* holding a ready bit (``nw`` if none).

        Starts at the column's ``ready_from`` bound and moves the bound up past the empty
        words, so that repeated hand-outs do not rescan them.
        """
        cdef Py_ssize_t w = g.ready_from[c]
        cdef Py_ssize_t nw = g.nw
        while w < nw and g.ready[c * nw + w] == 0:
            w += 1
        g.ready_from[c] = <int32_t>w
        return w

    def pop_ready(self, max_tasks=None):
        """Hand out up to *max_tasks* ready tasks in (row group, column, row) order."""
        cdef Py_ssize_t limit
        cdef _Group g
        cdef list out = []
        if max_tasks is None:
            limit = NO_LIMIT
        else:
            if isinstance(max_tasks, bool) or not isinstance(max_tasks, (int, np.integer)):
                raise IndexTypeError(f"pop_ready() needs an integer max_tasks, got {max_tasks!r}")
            if max_tasks < 0:
                raise InvalidArgumentError(f"pop_ready() needs max_tasks >= 0, got {max_tasks!r}")
            limit = min(max_tasks, NO_LIMIT)  # a huge limit (beyond Py_ssize_t) means no limit
        cdef int64_t* ent
        cdef int64_t e, row
        cdef Py_ssize_t want, n, i
        heap = self._heap
        while heap and limit > len(out):
            g = self.groups.get(heap[0])
            if g is None or g.total_ready == 0:
                heapq.heappop(heap)
                if g is not None:
                    g.in_heap = False
                continue
            # Take first, without allocating a Python object (an allocation may run the garbage
            # collector, whose finalizers may switch threads); build the tasks afterwards.
            want = min(limit - len(out), g.total_ready)
            ent = <int64_t*>malloc(want * sizeof(int64_t))
            if ent == NULL:
                raise MemoryError()
            n = self._take(g, want, ent)
            if g.total_ready == 0:
                heapq.heappop(heap)
                g.in_heap = False
            try:
                for i in range(n):
                    e = ent[i]
                    row = (e & LOW32) - 1
                    if row < 0:
                        out.append(_make(self._factory, e >> 32, self.names[e >> 32], g.row_group, None,
                                         self._batch_types[e >> 32]))
                    elif row == SCRATCH_ROW:
                        out.append(_make(self._factory, e >> 32, self.names[e >> 32], g.row_group, None, FROM_SCRATCH))
                    else:
                        out.append(_make(self._factory, e >> 32, self.names[e >> 32], g.row_group, row, CELL))
            finally:
                free(ent)
        return out

    cdef Py_ssize_t _take(self, _Group g, Py_ssize_t limit, int64_t* ent) noexcept:
        """Hand out up to *limit* ready tasks of *g* in (column, row) order into *ent*.

        Entries are encoded as in deltas: ``(column << 32) | (row + 1)``, 0 for a batch task
        and ``SCRATCH_ROW + 1`` for a from-scratch one.  Returns how many were taken.
        """
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w, n = 0
        cdef int c
        cdef uint64_t word, bit
        for c in range(self.C):
            if n >= limit:
                break
            if g.n_ready[c] == 0:
                continue
            if self.is_batch[c]:
                if g.scratch_ready[c] and n < limit:
                    ent[n] = ((<int64_t>c) << 32) | ((SCRATCH_ROW + 1) & LOW32)
                    n += 1
                    g.scratch_ready[c] = 0
                    g.n_ready[c] -= 1
                    g.total_ready -= 1
                if g.batch_ready[c] and n < limit:
                    ent[n] = (<int64_t>c) << 32
                    n += 1
                    g.batch_ready[c] = 0
                    g.n_ready[c] -= 1
                    g.total_ready -= 1
                continue
            w = self._first_ready_word(g, c)
            while w < nw and g.n_ready[c] > 0 and n < limit:
                word = g.ready[c * nw + w]
                while word and n < limit:
                    bit = word & (~word + 1)
                    ent[n] = ((<int64_t>c) << 32) | (64 * w + cf_ctz(word) + 1)
                    n += 1
                    word ^= bit
                    g.ready[c * nw + w] &= ~bit
                    g.n_ready[c] -= 1
                    g.total_ready -= 1
                w += 1
        return n

    def ready_tasks(self):
        """Every ready task, in (row group, column, row) order, leaving the frontier as it is."""
        cdef list out = []
        cdef _Group g
        for key in sorted(k for k, g in self.groups.items() if (<_Group>g).total_ready > 0):
            g = self.groups[key]
            self._collect(g, NO_LIMIT, False, out)
        return out

    def ready_rows(self, column, row_group, bint take=False):
        """Ready rows of a cell-by-cell column in one group, as an int64 array."""
        cdef int c = self._column(column, "ready_rows")
        if self.is_batch[c]:
            raise StrategyMismatchError(
                f"ready_rows() needs a cell_by_cell column, but {column!r} is full_column (use pop_ready_batch())"
            )
        cdef _Group g = self._existing_group(row_group, "ready_rows")
        if g is None or g.n_ready[c] == 0:
            return np.zeros(0, dtype=np.int64)
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t count = g.n_ready[c]
        out = np.empty(count, dtype=np.int64)
        cdef int64_t[::1] ov = out
        cdef Py_ssize_t w, j = 0
        cdef uint64_t word
        w = self._first_ready_word(g, c)
        while w < nw and j < count:  # from the first ready word to the last ready row only
            word = g.ready[c * nw + w]
            while word:
                ov[j] = 64 * w + cf_ctz(word)
                j += 1
                word &= word - 1
            if take:
                g.ready[c * nw + w] = 0
            w += 1
        if take:
            g.total_ready -= g.n_ready[c]
            g.n_ready[c] = 0
        return out

    def pop_ready_batch(self, column, row_group):
        """Take the full-column task of *column* in *row_group* if it is ready."""
        cdef int c = self._column(column, "pop_ready_batch")
        if not self.is_batch[c]:
            raise StrategyMismatchError(
                f"pop_ready_batch() needs a full_column column, but {column!r} is cell_by_cell"
            )
        cdef _Group g = self._existing_group(row_group, "pop_ready_batch")
        if g is None or not g.batch_ready[c]:
            return False
        g.batch_ready[c] = 0
        g.n_ready[c] -= 1
        g.total_ready -= 1
        return True

    def ready_columns(self, row_group):
        """Columns with at least one ready task in *row_group*, in topological order."""
        cdef _Group g = self._existing_group(row_group, "ready_columns")
        if g is None or g.total_ready == 0:
            return []
        return [self.names[c] for c in range(self.C) if g.n_ready[c] > 0]

    # -- queries ------------------------------------------------------------------------

    def is_ready(self, column, row_group, row_index, bint scratch=False, str method="is_frontier_task"):
        """Whether the task (column, row_group, row_index) is in the frontier.

        *method* names the public call in error messages (callers validate tasks with it).
        """
        cdef int c = self._column(column, method)
        cdef _Group g = self._existing_group(row_group, method)
        cdef int64_t r
        if g is None:
            if row_index is not None and not self.is_batch[c]:
                self._check_untouched_row(self._row_group_key(row_group, method), row_index,
                                          method)
            return False
        if row_index is None:
            return bool(self.is_batch[c] and (g.scratch_ready[c] if scratch else g.batch_ready[c]))
        if self.is_batch[c]:
            return False
        r = self._row(g, row_index, method)
        return bool(g.ready[c * g.nw + (r >> 6)] & ((<uint64_t>1) << (r & 63)))

    def is_done_ref(self, ref):
        """:meth:`is_done` for a slice reference (any object with the three fields)."""
        try:
            column, row_group, row_index = ref.column, ref.row_group, ref.row_index
        except AttributeError:
            raise InvalidArgumentError(f"is_complete() needs a SliceRef, got {type(ref).__name__} {ref!r}") from None
        return self.is_done(column, row_group, row_index)

    def is_done(self, column, row_group, row_index):
        """Whether a cell (or, with ``row_index=None``, a batch) is complete."""
        cdef int c = self._column(column, "is_complete")
        key = self._row_group_key(row_group, "is_complete")
        cdef _Group g = self.groups.get(key)
        cdef int64_t r
        if g is None:
            if key in self.compacted:
                if row_index is None:
                    # A compacted group was complete: some row is not dropped, and that row has
                    # every column done (batches only by a completed range), unless all rows were
                    # dropped, which a group of no rows is vacuously not.
                    size, packed = self.compacted[key]
                    return size == 0 or int.from_bytes(packed, "little").bit_count() < size
                return not self.compacted_is_dropped(key, row_index, "is_complete")
            if row_index is not None:
                self._check_untouched_row(key, row_index, "is_complete")
            return False
        if row_index is None:
            return bool(g.batch_done[c])
        r = self._row(g, row_index, "is_complete")
        return bool(g.done[c * g.nw + (r >> 6)] & ((<uint64_t>1) << (r & 63)))

    def compacted_is_dropped(self, key, row_index, str method):
        size, packed = self.compacted[key]
        if isinstance(row_index, (bool, np.bool_)) or not isinstance(row_index, (int, np.integer)):
            raise IndexTypeError(f"{method}() needs an integer row index, got {row_index!r}")
        if not 0 <= row_index < size:
            raise RowIndexError(
                f"{method}() got row index {row_index!r} outside row group {key!r} of size {size}"
            )
        byte = row_index >> 3
        return byte < len(packed) and bool(packed[byte] & (1 << (row_index & 7)))

    def _check_untouched_row(self, key, row_index, str method):
        """Validate a row index of a group that holds no state (raises; never mutates)."""
        size = self.plan.row_group_size(key)
        if isinstance(row_index, (bool, np.bool_)) or not isinstance(row_index, (int, np.integer)):
            raise IndexTypeError(f"{method}() needs an integer row index, got {row_index!r}")
        if not 0 <= row_index < size:
            raise RowIndexError(
                f"{method}() got row index {row_index!r} outside row group {key!r} of size {size}"
            )

    def is_dropped(self, row_group, row_index):
        key = self._row_group_key(row_group, "is_dropped")
        cdef _Group g = self.groups.get(key)
        cdef int64_t r
        if g is None:
            if key in self.compacted:
                return self.compacted_is_dropped(key, row_index, "is_dropped")
            self._check_untouched_row(key, row_index, "is_dropped")
            return False
        r = self._row(g, row_index, "is_dropped")
        return bool(g.dropped[r >> 6] & ((<uint64_t>1) << (r & 63)))

    def column_resolved(self, column, row_group):
        """Whether every row of *column* in the group is completed or dropped (O(1))."""
        cdef int c = self._column(column, "is_column_complete_for_rg")
        key = self._row_group_key(row_group, "is_column_complete_for_rg")
        cdef _Group g = self.groups.get(key)
        if g is None:
            # An untouched group of zero rows is vacuously resolved, as it is once touched.
            return key in self.compacted or self.plan.row_group_size(key) == 0
        return bool(g.batch_done[c]) or g.n_resolved[c] == g.n

    def group_resolved(self, row_group, row_group_size, columns):
        """Whether every non-dropped row of the group has every given column done."""
        if isinstance(columns, str):
            raise InvalidArgumentError(
                f"is_row_group_complete() needs a sequence of column names, not the str {columns!r}"
            )
        try:
            columns = list(columns)
        except TypeError:
            raise InvalidArgumentError(
                f"is_row_group_complete() needs a sequence of column names, got {type(columns).__name__}"
            ) from None
        ids = [self._column(name, "is_row_group_complete") for name in columns]
        key = self._row_group_key(row_group, "is_row_group_complete")
        if isinstance(row_group_size, (bool, np.bool_)) or not isinstance(row_group_size, (int, np.integer)):
            raise IndexTypeError(
                f"is_row_group_complete() needs an integer row_group_size, got {row_group_size!r}"
            )
        cdef _Group g = self.groups.get(key)
        cdef int c
        if g is None:
            expected = self.compacted[key][0] if key in self.compacted else self.plan.row_group_size(key)
            if row_group_size != expected:
                raise SizeMismatchError(
                    f"is_row_group_complete() got row_group_size {row_group_size!r} for row group "
                    f"{key!r}, whose size is {expected}"
                )
            return key in self.compacted or expected == 0 or not ids
        self._check_size(g, row_group_size, "is_row_group_complete")
        for c in ids:
            if g.n_resolved[c] != g.n:
                return False
        return True

    def compact(self, row_group, bint abandon=False):
        """Release a group's arrays, keeping its dropped rows (packed) and progress totals.

        A group is compacted once it is complete (every row dropped or done in every column),
        so that the terminal answers kept afterwards are true.  An incomplete group is refused
        unless *abandon*: its open rows are then dropped first, which is what they became.
        DataDesigner-compatible mode takes the caller's word, as DataDesigner does.
        """
        key = self._row_group_key(row_group, "compact_row_group")
        if key in self.compacted:
            return
        cdef _Group g = self.groups.get(key)
        cdef int c
        cdef Py_ssize_t w
        cdef int64_t n_open
        cdef uint64_t* mask
        if g is None:
            size = self.plan.row_group_size(key)
            if size == 0 or self.dd_compat:
                self._set_compacted(key, size, b"")
                return
            if not abandon:
                raise InvalidArgumentError(self._incomplete_message(key, size))
            every_row = np.packbits(np.ones(size, dtype=np.uint8), bitorder="little").tobytes()
            dropped = self.compacted_dropped + size
            if key in self.groups or key in self.compacted:
                return  # another thread touched or compacted it meanwhile
            self._set_compacted(key, size, every_row)
            self.compacted_dropped = dropped
            return
        if not self.dd_compat:
            n_open = self._open_rows(g, NULL)
            if n_open:
                if not abandon:
                    raise InvalidArgumentError(self._incomplete_message(key, n_open))
                mask = self._scratch_words(g.nw)
                self._open_rows(g, mask)
                self._reserve(self.C + 1, self.C * (g.nw + 1) + 1)
                self._k_drop_rows(g, mask)
        # Everything that allocates comes first; the state then changes without a thread switch.
        dropped_words = np.asarray(g.bits[2 * self.C * g.nw : (2 * self.C + 1) * g.nw])
        entry = (g.n, dropped_words.astype("<u8").tobytes().rstrip(b"\x00"))
        counts = np.asarray(g.counts)
        completed = self.compacted_completed + counts[: self.C]
        dropped = self.compacted_dropped + (counts[self.C : 2 * self.C] - counts[: self.C])
        if self.groups.get(key) is not g:
            return  # another thread compacted it meanwhile
        del self.groups[key]
        self._set_compacted(key, entry[0], entry[1])
        self.compacted_completed = completed
        self.compacted_dropped = dropped
        if len(self._heap) > 2 * len(self.groups) + 64:
            # Ids of released groups leave the heap lazily, when pop_ready meets them; a driver
            # that only uses the bulk calls never does, so drop them here (amortised O(1)).
            live = [k for k in self._heap if k in self.groups]
            heapq.heapify(live)
            self._heap = live

    cdef void _set_compacted(self, key, size, bytes packed):
        """Record a compacted group, keeping :attr:`nbytes` O(active groups)."""
        self.compacted[key] = (size, packed)
        self._compacted_bytes += len(packed)

    def restore_compacted(self, row_group, size, packed):
        """Record a group compacted before a checkpoint (nothing in the input is trusted)."""
        key = self._row_group_key(row_group, "restore_compacted")
        if self.plan.row_group_size(key) != size or key in self.groups or key in self.compacted:
            raise ValueError(f"restore_compacted() got row group {key!r}, which does not fit the plan")
        packed = bytes(packed)
        if len(packed) > (size + 7) // 8:
            raise ValueError(f"restore_compacted() got too many dropped rows for row group {key!r}")
        self._set_compacted(key, size, packed)

    cdef int64_t _open_rows(self, _Group g, uint64_t* mask) noexcept:
        """Rows neither dropped nor done in every column (into *mask* when not NULL)."""
        cdef Py_ssize_t nw = g.nw
        cdef Py_ssize_t w
        cdef int c
        cdef uint64_t open_word, all_done
        cdef int64_t n_open = 0
        for c in range(self.C):
            if g.n_resolved[c] != g.n:
                break
        else:
            return 0  # O(columns) when the group is complete
        for w in range(nw):
            all_done = _tail_mask(g.n, w, nw)
            for c in range(self.C):
                all_done &= g.done[c * nw + w]
            open_word = _tail_mask(g.n, w, nw) & ~g.dropped[w] & ~all_done
            n_open += cf_popcount(open_word)
            if mask != NULL:
                mask[w] = open_word
        return n_open

    def _incomplete_message(self, key, n_open):
        return (
            f"compact_row_group() got row group {key!r}, which is not complete: {n_open} rows are "
            "neither dropped nor done in every column (drop them first, or pass abandon=True)"
        )

    def restore_group(self, row_group, bits, flags):
        """Install a group's arrays (from a checkpoint); the caller rebuilds the frontier.

        Nothing in the input is trusted: bits past the end of the group are cleared, flags
        are clamped to 0/1, and every counter is recomputed from the bits.
        """
        key = self._row_group_key(row_group, "restore_group")
        size = self.plan.row_group_size(key)
        nw = (size + 63) // 64
        bits = np.array(bits, dtype=np.uint64, copy=True).reshape(-1)
        flags = np.array(flags, dtype=np.uint8, copy=True).reshape(-1)
        if bits.shape != (max((2 * self.C + 1) * nw, 1),) or flags.shape != (max(4 * self.C, 1),):
            raise ValueError(f"restore_group() got arrays of the wrong shape for row group {key!r}")
        if key in self.compacted:
            raise RowGroupCompactedError(f"restore_group() got row group {key!r}, which was already compacted")
        np.minimum(flags, 1, out=flags)
        cdef _Group g = _Group(key, size, self.C, bits, None, flags)
        g.attached = True
        cdef Py_ssize_t w
        cdef int c
        cdef uint64_t tail
        for w in range(g.nw):
            tail = _tail_mask(g.n, w, g.nw)
            g.dropped[w] &= tail
            for c in range(self.C):
                g.done[c * g.nw + w] &= tail
                g.ready[c * g.nw + w] &= tail if not self.is_batch[c] else 0
        g.n_dropped = 0
        g.total_ready = 0
        for w in range(g.nw):
            g.n_dropped += cf_popcount(g.dropped[w])
        for c in range(self.C):
            g.n_done[c] = 0
            g.n_resolved[c] = 0
            g.n_ready[c] = 0
            if not self.is_batch[c]:
                g.batch_ready[c] = 0
                g.scratch_ready[c] = 0
            for w in range(g.nw):
                g.n_done[c] += cf_popcount(g.done[c * g.nw + w])
                g.n_resolved[c] += cf_popcount(g.done[c * g.nw + w] | g.dropped[w])
                g.n_ready[c] += cf_popcount(g.ready[c * g.nw + w])
            g.n_ready[c] += g.batch_ready[c] + g.scratch_ready[c]
            g.total_ready += g.n_ready[c]
        self.groups[key] = g
        if g.total_ready > 0 and not g.in_heap:
            heapq.heappush(self._heap, key)
            g.in_heap = True

    def snapshot(self):
        """The whole completion state at one instant, for a checkpoint.

        Returns ``(groups, compacted, compacted_completed, compacted_dropped)`` where
        *groups* lists ``(row_group, size, bits bytes, flags bytes)`` of every active group.
        Nothing here runs Python code: the cyclic garbage collector (whose finalizers could
        let another thread run) is paused while the copies are made, so no event of another
        thread lands between two groups, or between a group's bits and its flags.
        """
        cdef _Group g
        collecting = gc.isenabled()
        gc.disable()
        try:
            groups = [
                (key, g.n, g.bits.tobytes(), g.flags.tobytes())
                for key, g in self.groups.items()
            ]
            compacted = dict(self.compacted)
            completed = self.compacted_completed.copy()
            dropped = self.compacted_dropped.copy()
        finally:
            if collecting:
                gc.enable()
        return groups, compacted, completed, dropped

    def progress_counts(self):
        """Cells completed and rows dropped (not completed) per column, over every group.

        Computed at one instant, like :meth:`snapshot`.
        """
        cdef _Group g
        cdef int c
        cdef int64_t[::1] done_view, dropped_view
        collecting = gc.isenabled()
        gc.disable()
        try:
            completed = np.array(self.compacted_completed, dtype=np.int64)
            dropped = np.array(self.compacted_dropped, dtype=np.int64)
            done_view = completed
            dropped_view = dropped
            for g in self.groups.values():
                for c in range(self.C):
                    done_view[c] += g.n_done[c]
                    dropped_view[c] += g.n_resolved[c] - g.n_done[c]
        finally:
            if collecting:
                gc.enable()
        return completed, dropped

    def total_ready(self):
        """Number of tasks in the frontier."""
        cdef _Group g
        cdef int64_t total = 0
        for g in self.groups.values():
            total += g.total_ready
        return total

    @property
    def nbytes(self):
        """Bytes held by the state arrays (active groups and compacted summaries)."""
        cdef _Group g
        cdef int64_t total = self.compacted_completed.nbytes + self.compacted_dropped.nbytes
        for g in self.groups.values():
            total += g.bits.nbytes + g.counts.nbytes + g.flags.nbytes
        return total + self._compacted_bytes
