"""The ``hedgebot`` command: one module per command group, each registering its subcommands."""
