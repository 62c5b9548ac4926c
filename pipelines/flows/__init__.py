"""The flows behind each command, as plain functions over DataFrames (no typer here)."""
