"""Fitting and serving: a configured model fitted (tuned, early-stopped, refitted, warm-started) on the run's
splits, its cost metered, and its top-K lists made. Between preparation and evaluation; ``models`` below it
holds only the models and what they share."""
