"""Reports from finished run dirs; nothing here imports the pipeline, torch or the engine.

``audit`` (with ``audit_load`` and ``audit_stats``) is the ``unlearnbench-audit`` command.
"""
