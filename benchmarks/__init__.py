"""Performance benchmarks (``python -m benchmarks [--quick]``); see ``benchmarks/run.py``.

Speed is measured here, never in the test suite."""
