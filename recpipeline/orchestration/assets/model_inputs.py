"""``model_inputs``: what every model reads — train, validation, the id maps, the catalogue and the user
profiles — as one asset, so that each model and recommendations asset has one edge to the shared inputs in
the lineage graph instead of six.

The asset itself stores only a manifest (one row per bundled table: its rows and columns); an input on it is
loaded by ``io_managers.ModelInputsLoader`` as the ``TrainingData`` it stands for, each table read exactly as
an input on that table would read it (train and validation with the columns the input's metadata names), so
no model sees anything other than before.
"""

import pandas as pd
import pyarrow.parquet as pq
from dagster import AssetIn, MetadataValue, Output, asset
from upath import UPath

from recpipeline.config import RunConfig
from recpipeline.evaluation.reports import markdown_table
from recpipeline.orchestration.io_managers import MODEL_INPUT_TABLES

MODEL_INPUTS = "model_inputs"
GROUP = "preparation"
LOADER_KEY = "model_inputs_loader"


def model_inputs_in(metadata: dict[str, list[str]] | None = None) -> AssetIn:
    """An input on ``model_inputs``, loaded as ``TrainingData``; ``metadata``: e.g. the interaction columns
    the model reads."""
    return AssetIn(MODEL_INPUTS, input_manager_key=LOADER_KEY, metadata=metadata)


def build_model_inputs_assets(config: RunConfig) -> list:
    @asset(
        name=MODEL_INPUTS,
        group_name=GROUP,
        deps=list(MODEL_INPUT_TABLES),
        kinds={"parquet"},
        description="What every model reads, as one upstream asset: "
        + ", ".join(f"`{name}`" for name in MODEL_INPUT_TABLES)
        + ". Stores a manifest (one row per table: rows, columns); models load the tables themselves.",
    )
    def model_inputs() -> Output[pd.DataFrame]:
        rows = []
        for name in MODEL_INPUT_TABLES:
            path = UPath(config.storage) / f"{name}.parquet"
            parquet = pq.read_metadata(path.path, filesystem=path.fs)
            rows.append({"table": name, "rows": parquet.num_rows, "columns": ", ".join(parquet.schema.names)})
        manifest = pd.DataFrame(rows)
        return Output(manifest, metadata={"tables": MetadataValue.md(markdown_table(manifest))})

    return [model_inputs]
