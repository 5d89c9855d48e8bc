# cython: language_level=3
# cython: freethreading_compatible=True
"""Stable task ids in DataDesigner's format, computed in C.

A scheduler that names tasks ``"task-" + sha1(f"{column}\\0{row_group}\\0{row_index}\\0
{task_type}").hexdigest()[:16]`` computes one id per task it takes.  Here an id costs one C
hash of a few dozen bytes instead of a string format, an encode, a hash object and a hex
digest in Python.  The hash is the vendored, self-contained ``_sha1.h``; :func:`sha1` exposes
it whole so that tests can check it against :mod:`hashlib` on any input.
"""

from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cdef extern from "_sha1.h":
    void cf_sha1(const unsigned char* data, size_t length, unsigned char* out) noexcept nogil

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL

cdef const char* HEX_DIGITS = b"0123456789abcdef"

__all__ = ["sha1", "stable_task_id"]


def sha1(data):
    """The 20-byte SHA-1 digest of *data* (bytes-like) by the vendored implementation."""
    cdef const unsigned char[::1] view = memoryview(bytes(data)).cast("B")
    cdef unsigned char digest[20]
    cf_sha1(&view[0] if view.shape[0] else <const unsigned char*>b"", view.shape[0], digest)
    return digest[:20]


cdef Py_ssize_t int_text(object value, char* out) noexcept:
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
    """The stable id of a task from its four fields (see the module docstring)."""
    cdef char rg_text[24]
    cdef char ri_text[24]
    cdef Py_ssize_t n_col = 0, n_type = 0, n_rg, n_ri, total, pos, i
    cdef const char* col_p
    cdef const char* type_p
    cdef const char* rg_p = rg_text
    cdef const char* ri_p = ri_text
    cdef unsigned char stack[256]
    cdef unsigned char* buf = stack
    cdef unsigned char digest[20]
    cdef char text[21]
    col_p = PyUnicode_AsUTF8AndSize(column, &n_col)
    type_p = PyUnicode_AsUTF8AndSize(task_type, &n_type)
    rg_s = ri_s = None  # keep the formatted texts alive while their bytes are read
    n_rg = int_text(row_group, rg_text)
    if n_rg < 0:
        rg_s = format(row_group, "")
        rg_p = PyUnicode_AsUTF8AndSize(rg_s, &n_rg)
    if row_index is None:
        ri_p = b"None"
        n_ri = 4
    else:
        n_ri = int_text(row_index, ri_text)
        if n_ri < 0:
            ri_s = format(row_index, "")
            ri_p = PyUnicode_AsUTF8AndSize(ri_s, &n_ri)
    total = n_col + n_rg + n_ri + n_type + 3
    if total > 256:
        buf = <unsigned char*>malloc(total)
        if buf == NULL:
            raise MemoryError()
    pos = 0
    memcpy(buf + pos, col_p, n_col)
    pos += n_col
    buf[pos] = 0
    pos += 1
    memcpy(buf + pos, rg_p, n_rg)
    pos += n_rg
    buf[pos] = 0
    pos += 1
    memcpy(buf + pos, ri_p, n_ri)
    pos += n_ri
    buf[pos] = 0
    pos += 1
    memcpy(buf + pos, type_p, n_type)
    cf_sha1(buf, total, digest)
    if buf != stack:
        free(buf)
    memcpy(text, b"task-", 5)
    for i in range(8):
        text[5 + 2 * i] = HEX_DIGITS[digest[i] >> 4]
        text[6 + 2 * i] = HEX_DIGITS[digest[i] & 15]
    return text[:21].decode("ascii")


def stable_task_id(column, row_group, row_index, task_type):
    """A task's stable id from its four fields, in DataDesigner's id format (computed in C)."""
    return stable_task_id_of(
        column if type(column) is str else format(column, ""),
        row_group,
        row_index,
        task_type if type(task_type) is str else format(task_type, ""),
    )
