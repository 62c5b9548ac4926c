"""The planner-facing outputs: recommendations schema, HTML report, Excel export, frontier plots."""
