"""One report family for every verb: a versioned envelope, pydantic models, shipped schemas.

* :mod:`edgekit.reports.envelope`: the envelope (``schema``, ``schema_version``, ``kind``,
  ``edgekit_version``, ``command``, ``created``, ``environment``, ``passed``, ``verdict``,
  ``gates``, ``warnings``) every ``to_dict()`` and ``edgekit run``'s ``report.json`` start with;
* :mod:`edgekit.reports.models`: the reports as pydantic models;
* :mod:`edgekit.reports.schemas`: the JSON Schemas made from them, shipped in
  ``edgekit/reports/schemas/``, and :func:`validate`.

No torch, no onnxruntime: the robot side writes and reads these reports.
"""

from typing import Any

from edgekit.reports.envelope import KINDS, SCHEMA_VERSION, envelope, schema_tag

__all__ = ["KINDS", "SCHEMA_VERSION", "envelope", "schema_tag", "validate"]


def validate(report: dict[str, Any]) -> str:
    """Check a report against its kind's model; returns the kind (see
    :func:`edgekit.reports.schemas.validate`, imported on first use: it loads pydantic)."""
    from edgekit.reports.schemas import validate as _validate

    return _validate(report)
