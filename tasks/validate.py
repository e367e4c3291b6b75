"""ValidateData: the raw data must meet the [schema] of the pipeline config.

Every violation is reported in one error, so a person fixes them all at once.
"""

from __future__ import annotations

import json

from mlbuild import BuildTask, read_frame, validate_schema
from tasks.config import load, pipeline
from tasks.fetch import FetchData


class ValidateData(BuildTask):
    outputs = {"report": "validation.json"}
    packages = ("pandas", "pyarrow")

    def requires(self):
        return {"raw": FetchData()}

    def settings(self):
        return {"schema": load().schema_.model_dump()}

    def build(self, inputs, outputs):
        config = load()
        where = f"the data from {config.data.source}"
        frame = read_frame(inputs["raw"]["raw"], where)
        validate_schema(frame, config.schema_,
                        f"{where} (checked against [schema] in {pipeline().config})")
        counts = frame[config.schema_.label].value_counts().sort_index()
        report = {"rows": len(frame), "columns": len(frame.columns),
                  "classes": {str(k): int(v) for k, v in counts.items()}}
        outputs["report"].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
