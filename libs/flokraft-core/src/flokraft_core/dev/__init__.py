"""Development-only tools: the local token issuer (`devauth`) and demo analyses
(`demo_data`). No service imports this package (tests/test_dev_namespace.py checks it);
it is used by `make token`, `make seed`, `make dev`, the tests and the benchmarks."""
