"""How a ranked list is judged against held-out interactions: which items count as relevant and the ranking
metrics. Validation (``recpipeline.fitting``) and evaluation use the same engine, so early stopping and
tuning optimise exactly what the report shows."""
