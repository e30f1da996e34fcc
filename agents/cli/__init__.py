"""The cxloop command: one module per command group (main wires them)."""
