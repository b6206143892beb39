"""The model tests' planted blocks and one torch thread, shared with this folder."""

from recpipeline_tests.models.conftest import blocks, one_torch_thread  # noqa: F401
