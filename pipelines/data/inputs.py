"""One way in: a run's inputs from a data folder, or the seeded demo, validated the same way.

``recommend``/``demo``, ``train`` and ``retrain`` all call :func:`load_inputs`, so the demo's
seed and size and the validation options are honoured identically by every command.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.data.validation import DataSet, load_dataset

__all__ = ["load_inputs"]


def load_inputs(
    data: str | Path | None,
    *,
    demo: DemoConfig = DemoConfig(),
    freq: str | None = None,
    min_length: int = 8,
    fill_gaps: bool = False,
    strict: bool = False,
    demo_folder: str | Path | None = None,
) -> DataSet:
    """Validated demand, item master and network of ``data``, or of the generated demo.

    Parameters
    ----------
    data : path or None
        Data folder (``demand``, ``items``, optional ``stages`` + ``edges``); None = the demo.
    demo : DemoConfig
        Seed and size of the demo when ``data`` is None.
    freq, min_length, fill_gaps
        Passed to the validator (:func:`pipelines.data.validation.load_dataset`).
    strict : bool, default False
        Raise on any validation error instead of excluding the rows it names.
    demo_folder : path, optional
        Where the demo's CSVs are written (kept, e.g. inside a run folder); a temporary
        folder when omitted.

    Returns
    -------
    DataSet

    Raises
    ------
    InputFileError
        A missing or unreadable folder or file.
    DataValidationError
        With ``strict`` and any error in the report.
    """
    if data is None:
        if demo_folder is None:
            with tempfile.TemporaryDirectory(prefix="stockwise-demo-") as tmp:
                return load_inputs(
                    None,
                    demo=demo,
                    freq=freq,
                    min_length=min_length,
                    fill_gaps=fill_gaps,
                    strict=strict,
                    demo_folder=tmp,
                )
        write_demo(generate_demo(demo), demo_folder)
        data = demo_folder
    dataset = load_dataset(data, freq=freq, min_length=min_length, fill_gaps=fill_gaps)
    if strict:
        dataset.report.raise_if_errors()
    return dataset
