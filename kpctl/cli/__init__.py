"""The click commands: thin, one file per command group."""
