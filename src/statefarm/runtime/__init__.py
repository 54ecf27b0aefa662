"""Where and how a run executes.

The ``runtime`` parameters (``config``), devices and process placement (``placement``),
distributed training (``distributed``), worker pools (``parallel``), MLflow tracking
(``tracking``), the end-of-run summary (``run_summary``), write-then-rename (``atomic``),
the MLflow UI command (``mlflow_ui``).
"""
