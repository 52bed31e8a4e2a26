"""The device request protocol: parameters, JSON bodies (and later field selections, batches).

Pure code: it parses and validates, raising ``orchestrator.frontend.problems.Problem`` with a stable
code that names what was wrong. No I/O.
"""
