"""The ``apex`` command line (typer); the only place in APEX that prints."""
