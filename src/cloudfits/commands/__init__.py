"""The subcommands of ``cloudfits``, one module each (see `cloudfits.cli.COMMANDS`)."""
