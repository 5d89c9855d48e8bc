"""Worker for the DataDesigner end-to-end test: offline ``DatasetBuilder.build()`` runs.

Run as ``python dd_e2e_support.py {reference|cellfrontier} OUT_DIR`` with ``PYTHONHASHSEED=0``
(DataDesigner's sampler draw order depends on string hashing). One build per entry of
``CONCURRENT_ROW_GROUPS`` (DataDesigner's ``max_concurrent_row_groups``); build ``n`` writes its
dataset to ``OUT_DIR/dataset-rgs{n}.pkl``, and ``OUT_DIR/calls.json`` holds each build's
tracker call counts and timed-out cells.

Every public method of both tracker classes (DataDesigner's and cellfrontier's adapter) is
wrapped in place with a call counter, so the counts show which backend did the work. With
``cellfrontier`` the build runs inside ``cellfrontier.integrations.data_designer.installed()``.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

NUM_RECORDS = 120
BUFFER_SIZE = 50
SEED = 1234
BACKENDS = ("reference", "cellfrontier")
# Row groups admitted at once, one build each: one at a time, and several interleaved.
CONCURRENT_ROW_GROUPS = (1, 3)


def ci_requires_data_designer() -> bool:
    """Whether a missing DataDesigner must fail the tests (``CI`` is set) instead of skipping them."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_data_designer(module: str) -> None:
    """Skip the calling test module when *module* cannot be imported, or fail it under CI.

    CI installs the ``datadesigner`` extra: there a missing DataDesigner is a broken
    environment, and skipping would hide every DataDesigner test.
    """
    import importlib

    import pytest

    try:
        importlib.import_module(module)
    except ImportError as exc:
        message = f"NVIDIA DataDesigner (data-designer-engine) is not importable: {exc}"
        if ci_requires_data_designer():
            pytest.fail(f"{message}; CI must install the 'datadesigner' extra", pytrace=False)
        pytest.skip(message, allow_module_level=True)


def count_calls(cls: type, counter: collections.Counter[str]) -> None:
    """Wrap the public methods (and the ``with_graph`` classmethod) of *cls* with counters."""

    def counted(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counter[name] += 1
            return func(*args, **kwargs)

        return wrapper

    for name, attr in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(attr, classmethod):
            setattr(cls, name, classmethod(counted(name, attr.__func__)))
        elif callable(attr) and not isinstance(attr, (staticmethod, type)):
            setattr(cls, name, counted(name, attr))


# Cells whose first attempt timed out, by row key: the second attempt succeeds.
TIMED_OUT: set[int] = set()


def build_config() -> Any:
    """Samplers, expressions, custom cell columns (one drops rows, one times out once on some
    rows, which the scheduler retries) and a custom full column; no column needs a model."""
    from data_designer.config.column_configs import (
        CustomColumnConfig,
        ExpressionColumnConfig,
        GenerationStrategy,
        SamplerColumnConfig,
    )
    from data_designer.config.custom_column import custom_column_generator
    from data_designer.config.data_designer_config import DataDesignerConfig
    from data_designer.config.sampler_params import (
        CategorySamplerParams,
        SamplerType,
        UniformSamplerParams,
    )

    @custom_column_generator(required_columns=["score", "label"])
    def tagged(row: dict[str, Any]) -> dict[str, Any]:
        if row["row_key"] % 17 == 5:
            raise ValueError("this row is dropped on purpose")
        row["tagged"] = f"{row['label']}:{row['score']}"
        return row

    @custom_column_generator(required_columns=["label"])
    async def checked(row: dict[str, Any]) -> dict[str, Any]:
        from data_designer.engine.models.errors import ModelTimeoutError

        key = row["row_key"]
        if key % 7 == 2 and key not in TIMED_OUT:
            TIMED_OUT.add(key)
            raise ModelTimeoutError("a model call that timed out (retryable)")
        row["checked"] = len(row["label"])
        return row

    @custom_column_generator(required_columns=["tagged", "score"])
    def rank_in_batch(df: Any) -> Any:
        df = df.copy()
        df["rank_in_batch"] = df["score"].rank(method="first").astype(int)
        return df

    return DataDesignerConfig(
        columns=[
            SamplerColumnConfig(
                name="category",
                sampler_type=SamplerType.CATEGORY,
                params=CategorySamplerParams(values=["alpha", "beta", "gamma"]),
            ),
            SamplerColumnConfig(
                name="u",
                sampler_type=SamplerType.UNIFORM,
                params=UniformSamplerParams(low=0, high=1000),
                convert_to="int",
            ),
            ExpressionColumnConfig(name="row_key", expr="{{ u }}", dtype="int"),
            ExpressionColumnConfig(name="score", expr="{{ (u * 7) % 101 }}", dtype="int"),
            ExpressionColumnConfig(name="label", expr="{{ category | upper }}-{{ score }}"),
            CustomColumnConfig(name="tagged", generator_function=tagged),
            CustomColumnConfig(name="checked", generator_function=checked),
            CustomColumnConfig(
                name="rank_in_batch",
                generator_function=rank_in_batch,
                generation_strategy=GenerationStrategy.FULL_COLUMN,
            ),
            ExpressionColumnConfig(name="final", expr="{{ tagged }}#{{ rank_in_batch }}#{{ checked }}"),
        ]
    )


def build_dataset(out_dir: Path, concurrent_row_groups: int) -> Any:
    """Build the dataset offline with the async engine and return it as a dataframe."""
    import numpy as np
    import pandas as pd
    from data_designer.config.models import ModelProvider
    from data_designer.config.run_config import RunConfig
    from data_designer.engine.dataset_builders.dataset_builder import DatasetBuilder
    from data_designer.engine.model_provider import resolve_model_provider_registry
    from data_designer.engine.resources.resource_provider import create_resource_provider
    from data_designer.engine.resources.seed_reader import SeedReaderRegistry
    from data_designer.engine.secret_resolver import PlaintextResolver
    from data_designer.engine.storage.artifact_storage import ArtifactStorage

    np.random.seed(SEED)  # unseeded samplers draw from numpy's global generator
    random.seed(SEED)
    TIMED_OUT.clear()
    artifacts = out_dir / f"artifacts-rgs{concurrent_row_groups}"
    artifacts.mkdir(parents=True, exist_ok=True)
    provider = create_resource_provider(
        artifact_storage=ArtifactStorage(artifact_path=artifacts, dataset_name="e2e"),
        model_configs=[],
        secret_resolver=PlaintextResolver(),
        # A provider is mandatory; it is never contacted because no column needs a model.
        model_provider_registry=resolve_model_provider_registry(
            [ModelProvider(name="offline", endpoint="http://127.0.0.1:9/v1")]
        ),
        seed_reader_registry=SeedReaderRegistry([]),
        run_config=RunConfig(
            buffer_size=BUFFER_SIZE,
            max_concurrent_row_groups=concurrent_row_groups,
            # One task at a time: samplers draw from numpy's global generator, so tasks running
            # in parallel threads would make the data depend on thread timing.  The order in
            # which the scheduler interleaves the admitted row groups still comes from the
            # tracker's frontier deltas.
            max_in_flight_tasks=1,
            disable_early_shutdown=True,
        ),
    )
    path = DatasetBuilder(build_config(), provider).build(num_records=NUM_RECORDS)
    return pd.read_parquet(path)


def main(argv: list[str]) -> int:
    backend, out_dir = argv[0], Path(argv[1])
    if backend not in BACKENDS:
        raise SystemExit(f"backend must be one of {BACKENDS}, got {backend!r}")
    if os.environ.get("PYTHONHASHSEED") != "0":
        raise SystemExit("run with PYTHONHASHSEED=0: the generated data depends on string hashing")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("data_designer").setLevel(logging.ERROR)

    import data_designer.engine.dataset_builders.dataset_builder as dd_builder
    from data_designer.engine.dataset_builders.scheduling.completion import (
        CompletionTracker as ReferenceTracker,
    )

    from cellfrontier.integrations import data_designer as adapter

    calls: dict[str, collections.Counter[str]] = {
        "reference": collections.Counter(),
        "cellfrontier": collections.Counter(),
    }
    count_calls(ReferenceTracker, calls["reference"])
    count_calls(adapter.CompletionTracker, calls["cellfrontier"])

    builds: dict[str, Any] = {}
    for concurrent in CONCURRENT_ROW_GROUPS:
        for counter in calls.values():
            counter.clear()
        context = adapter.installed() if backend == "cellfrontier" else contextlib.nullcontext()
        with context:
            builder_tracker = dd_builder.CompletionTracker.__module__
            df = build_dataset(out_dir, concurrent)
        df.to_pickle(out_dir / f"dataset-rgs{concurrent}.pkl")
        builds[str(concurrent)] = {
            "calls": {name: dict(counter) for name, counter in calls.items()},
            "builder_tracker": builder_tracker,
            "timed_out": sorted(TIMED_OUT),
        }
    (out_dir / "calls.json").write_text(json.dumps(builds, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
