"""Worker for the DataDesigner end-to-end test: one offline ``DatasetBuilder.build()`` run.

Run as ``python dd_e2e_support.py {reference|cellfrontier} OUT_DIR`` with ``PYTHONHASHSEED=0``
(DataDesigner's sampler draw order depends on string hashing). The dataset is written to
``OUT_DIR/dataset.pkl`` and the tracker call counts to ``OUT_DIR/calls.json``.

Every public method of both tracker classes (DataDesigner's and cellfrontier's adapter) is
wrapped in place with a call counter, so the counts show which backend did the work. With
``cellfrontier`` the build runs inside ``cellfrontier.integrations.data_designer.installed()``.
"""

from __future__ import annotations

import collections
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


def build_config() -> Any:
    """Samplers, expressions, a dropping custom cell column and a custom full column (no model)."""
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
            CustomColumnConfig(
                name="rank_in_batch",
                generator_function=rank_in_batch,
                generation_strategy=GenerationStrategy.FULL_COLUMN,
            ),
            ExpressionColumnConfig(name="final", expr="{{ tagged }}#{{ rank_in_batch }}"),
        ]
    )


def build_dataset(out_dir: Path) -> Any:
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
    artifacts = out_dir / "artifacts"
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
            buffer_size=BUFFER_SIZE, max_concurrent_row_groups=1, disable_early_shutdown=True
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

    builder_tracker = ""
    if backend == "cellfrontier":
        with adapter.installed():
            builder_tracker = dd_builder.CompletionTracker.__module__
            df = build_dataset(out_dir)
    else:
        builder_tracker = dd_builder.CompletionTracker.__module__
        df = build_dataset(out_dir)

    df.to_pickle(out_dir / "dataset.pkl")
    report = {"calls": calls, "builder_tracker": builder_tracker}
    (out_dir / "calls.json").write_text(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
