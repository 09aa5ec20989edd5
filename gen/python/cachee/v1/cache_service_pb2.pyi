import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SetCondition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SET_CONDITION_UNSPECIFIED: _ClassVar[SetCondition]
    SET_CONDITION_IF_ABSENT: _ClassVar[SetCondition]
    SET_CONDITION_IF_PRESENT: _ClassVar[SetCondition]
SET_CONDITION_UNSPECIFIED: SetCondition
SET_CONDITION_IF_ABSENT: SetCondition
SET_CONDITION_IF_PRESENT: SetCondition

class GetRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    def __init__(self, key: _Optional[bytes] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "value")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ...) -> None: ...

class SetRequest(_message.Message):
    __slots__ = ("key", "value", "ttl", "condition")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    ttl: _duration_pb2.Duration
    condition: SetCondition
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., condition: _Optional[_Union[SetCondition, str]] = ...) -> None: ...

class SetResponse(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: bool
    def __init__(self, stored: _Optional[bool] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    def __init__(self, key: _Optional[bytes] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class BatchGetRequest(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, keys: _Optional[_Iterable[bytes]] = ...) -> None: ...

class BatchGetResult(_message.Message):
    __slots__ = ("found", "value")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    found: bool
    value: bytes
    def __init__(self, found: _Optional[bool] = ..., value: _Optional[bytes] = ...) -> None: ...

class BatchGetResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchGetResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchGetResult, _Mapping]]] = ...) -> None: ...

class BatchSetItem(_message.Message):
    __slots__ = ("key", "value", "ttl", "condition")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    ttl: _duration_pb2.Duration
    condition: SetCondition
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., condition: _Optional[_Union[SetCondition, str]] = ...) -> None: ...

class BatchSetRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[BatchSetItem]
    def __init__(self, items: _Optional[_Iterable[_Union[BatchSetItem, _Mapping]]] = ...) -> None: ...

class BatchSetResponse(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, stored: _Optional[_Iterable[bool]] = ...) -> None: ...

class PrewarmRequest(_message.Message):
    __slots__ = ("keys", "timeout")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    keys: int
    timeout: _duration_pb2.Duration
    def __init__(self, keys: _Optional[int] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class PrewarmCounts(_message.Message):
    __slots__ = ("requested", "loaded", "skipped", "failed", "elapsed")
    REQUESTED_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_FIELD_NUMBER: _ClassVar[int]
    requested: int
    loaded: int
    skipped: int
    failed: int
    elapsed: _duration_pb2.Duration
    def __init__(self, requested: _Optional[int] = ..., loaded: _Optional[int] = ..., skipped: _Optional[int] = ..., failed: _Optional[int] = ..., elapsed: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class PrewarmResponse(_message.Message):
    __slots__ = ("counts", "done")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    counts: PrewarmCounts
    done: bool
    def __init__(self, counts: _Optional[_Union[PrewarmCounts, _Mapping]] = ..., done: _Optional[bool] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("hits", "misses", "sets", "deletes", "evictions", "expirations", "entries", "memory_used_bytes", "memory_limit_bytes", "hit_rate", "uptime", "latency_p50", "latency_p95", "latency_p99", "generation", "eviction", "segment_path")
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    SETS_FIELD_NUMBER: _ClassVar[int]
    DELETES_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRATIONS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_LIMIT_BYTES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    EVICTION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_PATH_FIELD_NUMBER: _ClassVar[int]
    hits: int
    misses: int
    sets: int
    deletes: int
    evictions: int
    expirations: int
    entries: int
    memory_used_bytes: int
    memory_limit_bytes: int
    hit_rate: float
    uptime: _duration_pb2.Duration
    latency_p50: _duration_pb2.Duration
    latency_p95: _duration_pb2.Duration
    latency_p99: _duration_pb2.Duration
    generation: int
    eviction: str
    segment_path: str
    def __init__(self, hits: _Optional[int] = ..., misses: _Optional[int] = ..., sets: _Optional[int] = ..., deletes: _Optional[int] = ..., evictions: _Optional[int] = ..., expirations: _Optional[int] = ..., entries: _Optional[int] = ..., memory_used_bytes: _Optional[int] = ..., memory_limit_bytes: _Optional[int] = ..., hit_rate: _Optional[float] = ..., uptime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., latency_p50: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., latency_p95: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., latency_p99: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., generation: _Optional[int] = ..., eviction: _Optional[str] = ..., segment_path: _Optional[str] = ...) -> None: ...

class RecordAccessRequest(_message.Message):
    __slots__ = ("refs", "unreported_hits")
    REFS_FIELD_NUMBER: _ClassVar[int]
    UNREPORTED_HITS_FIELD_NUMBER: _ClassVar[int]
    refs: _containers.RepeatedScalarFieldContainer[int]
    unreported_hits: int
    def __init__(self, refs: _Optional[_Iterable[int]] = ..., unreported_hits: _Optional[int] = ...) -> None: ...

class RecordAccessResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
