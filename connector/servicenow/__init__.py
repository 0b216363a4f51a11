"""ServiceNow Table API access: client, pagers, query builder, value parsing.

pysnow is used only inside this package.
"""

import connector.servicenow._ijson  # noqa: F401  (first: before pysnow loads ijson)
from connector.servicenow.client import ServiceNowClient
from connector.servicenow.metrics import ClientMetrics
from connector.servicenow.models import (
    BatchItem,
    BatchResponse,
    BatchResult,
    Cursor,
    FieldInfo,
    Page,
)
from connector.servicenow.pager import KeyPager, KeysetPager
from connector.servicenow.query import Q, Query, QueryValueError, chunked_in
from connector.servicenow.values import (
    ReferenceValue,
    coerce,
    normalize_reference,
    parse_datetime_utc,
    parse_duration,
)

__all__ = [
    "BatchItem",
    "BatchResponse",
    "BatchResult",
    "ClientMetrics",
    "Cursor",
    "FieldInfo",
    "KeyPager",
    "KeysetPager",
    "Page",
    "Q",
    "Query",
    "QueryValueError",
    "ReferenceValue",
    "ServiceNowClient",
    "chunked_in",
    "coerce",
    "normalize_reference",
    "parse_datetime_utc",
    "parse_duration",
]
