"""The run log: typed records (`records`) and their reading and writing (`io`).

Builders that turn pipeline objects into records live in `evalkit.log.build`, imported
by the runner and stages only.
"""

from evalkit.log.io import (
    LogContent,
    LogWriter,
    RunLog,
    check_header,
    find_logs,
    parse_record,
    read_log,
    repair_log,
)
from evalkit.log.records import (
    PROMPT_REF,
    READABLE_VERSIONS,
    SCHEMA,
    SCHEMA_VERSION,
    HeaderRecord,
    SampleRecord,
    SummaryRecord,
)

__all__ = [
    "PROMPT_REF", "READABLE_VERSIONS", "SCHEMA", "SCHEMA_VERSION", "HeaderRecord", "LogContent",
    "LogWriter", "RunLog", "SampleRecord", "SummaryRecord", "check_header", "find_logs",
    "parse_record", "read_log", "repair_log",
]
