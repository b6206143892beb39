"""The thin Dagster layer: assets, checks, resources, IO managers, jobs and schedules.

Each asset reads its inputs, calls the domain code in ``recpipeline``, and hands back tables (written as
Parquet by the IO managers) plus metadata for the UI.
"""
