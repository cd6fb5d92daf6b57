"""Root conftest: every pytest run in this repository stays offline and sends no telemetry."""

from aliasgate.defaults import quiet_environment

quiet_environment()

# ``pytester`` drives the aliasgate pytest plugin in a subprocess in tests/test_plugin.py.
pytest_plugins = ["pytester"]
