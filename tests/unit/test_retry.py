"""Which failures are retried as transient, and which are not (shared/runtime/retry.py)."""

from __future__ import annotations

import pytest
from pymongo.errors import BulkWriteError, DuplicateKeyError, NotPrimaryError, OperationFailure, WriteConcernError

from shared.runtime.retry import is_transient


def bulk(write_errors: tuple[int, ...] = (), concern_errors: tuple[int, ...] = ()) -> BulkWriteError:
    return BulkWriteError(
        {
            "writeErrors": [{"index": i, "code": code, "errmsg": "x"} for i, code in enumerate(write_errors)],
            "writeConcernErrors": [{"code": code, "errmsg": "x"} for code in concern_errors],
        }
    )


@pytest.mark.parametrize(
    "error",
    [
        NotPrimaryError("not primary"),
        OperationFailure("stepped down", code=189),
        WriteConcernError("interrupted by a replica set state change", code=11602),
        bulk(concern_errors=(189,)),  # a settle whose write concern met a stepdown: PyMongo does not retry multi-updates
        bulk(write_errors=(10107, 10107)),
    ],
)
def test_a_stepdown_or_unreachable_store_is_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        DuplicateKeyError("E11000", code=11000),
        OperationFailure("bad value", code=2),
        bulk(write_errors=(11000,)),
        bulk(write_errors=(11000,), concern_errors=(189,)),  # a refusal besides the stepdown: not only the primary's doing
        bulk(),
        ValueError("a defect"),
    ],
)
def test_a_refusal_or_a_defect_is_not(error: BaseException) -> None:
    assert not is_transient(error)
