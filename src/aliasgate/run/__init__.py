"""Running suites: concurrent execution, the persistent response cache, progress.

Import the submodules directly (``aliasgate.run.runner``...); this package imports nothing so that
declaring a :class:`~aliasgate.run.suite.Suite` in ``evals/`` stays cheap.
"""
