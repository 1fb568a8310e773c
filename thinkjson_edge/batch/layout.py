"""Where a batch puts things in its output folder: the one definition its readers share.

``OUT_DIR/<rel>.json`` holds the object extracted from ``IN_DIR/<rel>``, and
``OUT_DIR/.reports/<rel>.report.json`` its full record. A reviewer's saves of a result
are recorded in ``OUT_DIR/<rel>.review.json``. The lock, the job database and
the manifest (input folder and schema, for viewers) are hidden, so no scan or listing
takes them for an input or a result.
"""

from __future__ import annotations

from pathlib import Path

RESULT_SUFFIX = ".json"
REPORTS_FOLDER = ".reports"
REPORT_SUFFIX = ".report.json"
LOCK_NAME = ".thinkjson-batch.lock"
MANIFEST_NAME = ".thinkjson-batch.json"
DATABASE_NAME = ".thinkjson-jobs.sqlite"
# A reviewer's saves of a result are recorded beside it: NAME.json -> NAME.review.json.
REVIEW_RECORD_SUFFIX = ".review.json"


def result_path(out_dir: Path, rel: str) -> Path:
    """Where the object extracted from input ``rel`` goes."""
    return out_dir / (rel + RESULT_SUFFIX)


def report_path(out_dir: Path, rel: str) -> Path:
    """Where the full record of input ``rel`` goes."""
    return out_dir / REPORTS_FOLDER / (rel + REPORT_SUFFIX)


def review_record_path(result: Path) -> Path:
    """The review record of a saved result (a batch's or any other)."""
    return result.with_name(result.name.removesuffix(RESULT_SUFFIX) + REVIEW_RECORD_SUFFIX)
