"""Asset factories, grouped by domain; each takes the run configuration."""
