# cython: language_level=3
# cython: freethreading_compatible=True
"""Value types built in compiled code: ``Task``, ``FrontierDelta`` and the task factory.

A ready task costs no Python object until someone asks for it: the core hands out task keys
(``_bits.pxd``) and a :class:`TaskFactory` turns them into objects, and a
:class:`FrontierDelta` keeps the kernels' ``(key, mask)`` entries and builds its tuples on
first access.  A caller that ignores a delta pays for one small integer buffer.
"""

cimport cython
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from cellfrontier._bits cimport SLOT_SCRATCH, DeltaLog, cf_ctz, key_column, key_slot

from cellfrontier.errors import InvalidArgumentError

__all__ = ["FrontierDelta", "Task", "TaskFactory"]

cdef str CELL = "cell"
cdef str FROM_SCRATCH = "from_scratch"


@cython.freelist(1024)
@cython.no_gc
cdef class Task:
    """One unit of work: a cell (``row_index`` set) or a whole row group of a column.

    Frozen and hashable.  ``task_type`` is ``"cell"``, ``"batch"`` or ``"from_scratch"``
    (a full-column task of a root column).

    Tasks hold names and numbers, which cannot refer back to them, so they stay out of the
    cyclic garbage collector (a scheduler holding thousands of tasks would otherwise make
    every young collection rescan them).
    """

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


cdef Task new_task(str column, object row_group, object row_index, str task_type):
    """A Task without the argument checks of ``__init__`` (the core's names are strings)."""
    cdef Task t = Task.__new__(Task)
    t.column = column
    t.row_group = row_group
    t.row_index = row_index
    t.task_type = task_type
    return t


cdef class TaskFactory:
    """Turns the core's task keys into :class:`Task` objects.

    *names* are the column names by column id; *full_types* the task type of each column's
    full-column task (``"from_scratch"`` for a root column, else ``"batch"``).  An
    integration subclasses this to hand out another library's task objects.
    """

    def __init__(self, names, full_types):
        self.names = tuple(names)
        self.full_types = tuple(full_types)

    cdef object build(self, int column, object row_group, int64_t slot):
        """The task in slot *slot* (a row, or a full-column slot) of *column* in *row_group*."""
        if slot >= 0:
            return new_task(self.names[column], row_group, slot, CELL)
        if slot == SLOT_SCRATCH:
            return new_task(self.names[column], row_group, None, FROM_SCRATCH)
        return new_task(self.names[column], row_group, None, self.full_types[column])


cdef class FrontierDelta:
    """What one mutation did to the frontier: tasks ``added`` and tasks ``removed``.

    Tasks are built on first access, from the word-level entries the kernels recorded.
    """

    def __cinit__(self):
        self._entries = NULL
        self._n_added = 0
        self._n_removed = 0

    def __init__(self, added=(), removed=()):
        self._added = tuple(added)
        self._removed = tuple(removed)
        self._count_added = len(self._added)
        self._count_removed = len(self._removed)

    def __dealloc__(self):
        free(self._entries)
        self._entries = NULL

    cdef tuple _decode(self, Py_ssize_t start, Py_ssize_t stop):
        cdef Py_ssize_t i
        cdef int64_t key, slot, base
        cdef int column
        cdef uint64_t mask
        cdef TaskFactory factory = self._factory
        out = []
        for i in range(start, stop):
            key = self._entries[2 * i]
            mask = <uint64_t>self._entries[2 * i + 1]
            column = key_column(key)
            slot = key_slot(key)
            if slot < 0:
                out.append(factory.build(column, self._row_group, slot))
                continue
            base = slot & ~(<int64_t>63)
            while mask:
                out.append(factory.build(column, self._row_group, base + cf_ctz(mask)))
                mask &= mask - 1
        return tuple(out)

    @property
    def added(self):
        """Tasks that entered the frontier (in topological column order, then row)."""
        with cython.critical_section(self):  # built once even when threads race to read it
            if self._added is None:
                self._added = self._decode(0, self._n_added)
            return self._added

    @property
    def removed(self):
        """Tasks that left the frontier."""
        with cython.critical_section(self):
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


cdef FrontierDelta delta_from_log(const DeltaLog* log, TaskFactory factory, object row_group):
    """The delta of the event recorded in *log* (entries copied: the log is reused)."""
    cdef FrontierDelta d = FrontierDelta.__new__(FrontierDelta)
    cdef Py_ssize_t total = log.n_added + log.n_removed
    d._n_added = log.n_added
    d._n_removed = log.n_removed
    d._count_added = log.tasks_added
    d._count_removed = log.tasks_removed
    if total == 0:
        d._added = ()
        d._removed = ()
        return d
    d._entries = <int64_t*>malloc(2 * total * sizeof(int64_t))
    if d._entries == NULL:
        raise MemoryError()
    memcpy(d._entries, log.added, 2 * log.n_added * sizeof(int64_t))
    memcpy(d._entries + 2 * log.n_added, log.removed, 2 * log.n_removed * sizeof(int64_t))
    d._factory = factory
    d._row_group = row_group
    return d
