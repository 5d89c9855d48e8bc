"""Type stubs for the stable task ids (``_task_id.pyx``)."""

def sha1(data: bytes | bytearray | memoryview) -> bytes:
    """The 20-byte SHA-1 digest of *data* by the vendored implementation."""

def stable_task_id(column: object, row_group: object, row_index: object, task_type: object) -> str:
    """``"task-"`` + the first 16 hex digits of SHA-1 of the four fields joined by NUL bytes."""
