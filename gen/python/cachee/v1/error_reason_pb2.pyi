from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    ERROR_REASON_KEY_EMPTY: _ClassVar[ErrorReason]
    ERROR_REASON_KEY_TOO_LARGE: _ClassVar[ErrorReason]
    ERROR_REASON_VALUE_TOO_LARGE: _ClassVar[ErrorReason]
    ERROR_REASON_MESSAGE_TOO_LARGE: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_TTL: _ClassVar[ErrorReason]
    ERROR_REASON_BATCH_TOO_LARGE: _ClassVar[ErrorReason]
    ERROR_REASON_INVALID_FIELD: _ClassVar[ErrorReason]
    ERROR_REASON_UNAUTHENTICATED: _ClassVar[ErrorReason]
    ERROR_REASON_OVERLOADED: _ClassVar[ErrorReason]
    ERROR_REASON_RESPONSE_TOO_LARGE: _ClassVar[ErrorReason]
    ERROR_REASON_OUT_OF_MEMORY: _ClassVar[ErrorReason]
    ERROR_REASON_SHUTTING_DOWN: _ClassVar[ErrorReason]
    ERROR_REASON_READ_CONTENDED: _ClassVar[ErrorReason]
    ERROR_REASON_SEGMENT_CORRUPT: _ClassVar[ErrorReason]
    ERROR_REASON_PREWARM_NOT_CONFIGURED: _ClassVar[ErrorReason]
    ERROR_REASON_PREWARM_RUNNING: _ClassVar[ErrorReason]
    ERROR_REASON_PREWARM_SOURCE_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_L2_UNAVAILABLE: _ClassVar[ErrorReason]
    ERROR_REASON_DEADLINE_EXCEEDED: _ClassVar[ErrorReason]
    ERROR_REASON_CANCELED: _ClassVar[ErrorReason]
    ERROR_REASON_INTERNAL: _ClassVar[ErrorReason]
    ERROR_REASON_WRONG_TYPE: _ClassVar[ErrorReason]
ERROR_REASON_UNSPECIFIED: ErrorReason
ERROR_REASON_KEY_EMPTY: ErrorReason
ERROR_REASON_KEY_TOO_LARGE: ErrorReason
ERROR_REASON_VALUE_TOO_LARGE: ErrorReason
ERROR_REASON_MESSAGE_TOO_LARGE: ErrorReason
ERROR_REASON_INVALID_TTL: ErrorReason
ERROR_REASON_BATCH_TOO_LARGE: ErrorReason
ERROR_REASON_INVALID_FIELD: ErrorReason
ERROR_REASON_UNAUTHENTICATED: ErrorReason
ERROR_REASON_OVERLOADED: ErrorReason
ERROR_REASON_RESPONSE_TOO_LARGE: ErrorReason
ERROR_REASON_OUT_OF_MEMORY: ErrorReason
ERROR_REASON_SHUTTING_DOWN: ErrorReason
ERROR_REASON_READ_CONTENDED: ErrorReason
ERROR_REASON_SEGMENT_CORRUPT: ErrorReason
ERROR_REASON_PREWARM_NOT_CONFIGURED: ErrorReason
ERROR_REASON_PREWARM_RUNNING: ErrorReason
ERROR_REASON_PREWARM_SOURCE_UNAVAILABLE: ErrorReason
ERROR_REASON_L2_UNAVAILABLE: ErrorReason
ERROR_REASON_DEADLINE_EXCEEDED: ErrorReason
ERROR_REASON_CANCELED: ErrorReason
ERROR_REASON_INTERNAL: ErrorReason
ERROR_REASON_WRONG_TYPE: ErrorReason
