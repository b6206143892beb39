"""recpipeline: nightly, orchestrated evidence on whether neural recommenders beat matrix factorisation.

Stage packages read like the asset graph: ``sources`` -> ``preparation`` -> ``models`` -> ``evaluation``,
with the column contracts between them in ``contracts`` and the run configuration in ``config``. None of
them imports Dagster; the Dagster layer (assets, checks, IO managers, jobs, runner) lives in
``recpipeline.orchestration`` and calls one domain function per asset.
"""

__version__ = "0.1.0"
