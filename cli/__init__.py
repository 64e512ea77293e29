"""The ``teachloop`` command, one module per command group."""
