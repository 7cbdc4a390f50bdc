"""The parts of ``benchmarks/perf.py``: the fakes in processes of their own, the deployment
artifacts (compiled or not), the stand-ins measured beside the handler, and the report."""
