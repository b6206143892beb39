"""recpipeline: nightly, orchestrated evidence on whether neural recommenders beat matrix factorisation.

The package root and its domain modules (config, sources, cleaning, encoding, splitting, models, metrics,
reports) never import Dagster; the Dagster layer lives in ``recpipeline.orchestration``.
"""

__version__ = "0.1.0"
