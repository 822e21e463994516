"""The optrun command-line front end (Typer). The only place that prints or exits."""
