"""The `evaluate` metric module of the shapes world; load it by path with `shapes_metric_path()`."""
