"""The commands behind the `trl-unified` CLI, one module each."""
