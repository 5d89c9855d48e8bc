"""Type stubs for the DataDesigner-compatible core (``_dd_core.pyx``)."""

from collections.abc import Iterable, Sequence
from typing import Any

from cellfrontier._core import TrackerCore
from cellfrontier._values import TaskFactory

REGISTRY_PRUNE_MIN: int

class DataDesignerTaskFactory(TaskFactory):
    """Builds instances of DataDesigner's task class, each registered under its stable id."""

    def __init__(
        self, names: Sequence[str], task_class: type, id_key: str, registry: dict[str, Any]
    ) -> None: ...

class DataDesignerCore(TrackerCore[Any]):
    """A tracker core with DataDesigner's semantics and task type; mutations return instances
    of the delta class it was given."""

    @property
    def registry(self) -> dict[str, tuple[int, int, int]]: ...
    def __init__(
        self, compiled: Any, plan: Any, task_class: type, delta_class: type, empty_delta: object, id_key: str
    ) -> None: ...
    def compact(self, row_group: int) -> bytes: ...  # type: ignore[override]
    def add_ready(
        self, column: str, row_group: int, row_index: int | None, scratch: bool, task_id: str
    ) -> bool: ...
    def unready_ids(self, task_ids: Iterable[str]) -> list[str]: ...
    def is_listed(self, column: str, row_group: int, row_index: int | None, scratch: bool) -> bool: ...
    def group_size(self, row_group: object) -> int | None: ...
    def cell_done(self, column: object, row_group: object, row: object) -> bool: ...
    def batch_done(self, column: object, row_group: object) -> bool: ...
    def row_dropped(self, row_group: object, row: object) -> bool: ...
    def column_complete(self, column: object, row_group: object) -> bool: ...
