package com.cachee.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.Map;

/**
 * A failed call. {@link #code()} is the gRPC status code, {@link #reason()} the server's
 * google.rpc.ErrorInfo reason ({@code "VALUE_TOO_LARGE"}; docs/grpc.md lists them) or
 * null when the error came from gRPC itself, and {@link #metadata()} the ErrorInfo
 * metadata ({@code field}, {@code size}, {@code limit}). Catch a nested subclass to
 * handle one kind of failure.
 */
public class CacheeException extends RuntimeException {
  /** The domain of every ErrorInfo that cachee attaches. */
  public static final String DOMAIN = "cachee";

  private final Status.Code code;
  private final String reason;
  private final Map<String, String> metadata;

  CacheeException(Status.Code code, String message, String reason, Map<String, String> metadata, Throwable cause) {
    super(reason != null ? code + " " + reason + ": " + message : code + ": " + message, cause);
    this.code = code;
    this.reason = reason;
    this.metadata = Map.copyOf(metadata);
  }

  public Status.Code code() {
    return code;
  }

  /** The ErrorInfo reason, or null when the error did not come from cachee's handlers. */
  public String reason() {
    return reason;
  }

  public Map<String, String> metadata() {
    return metadata;
  }

  /** A request field is invalid: empty or oversized key or value, bad TTL, too big a batch. */
  public static final class InvalidArgument extends CacheeException {
    InvalidArgument(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
      super(c, m, r, md, t);
    }
  }

  /** The cache is full under --eviction=noeviction, or a message is over the size limit. */
  public static final class ResourceExhausted extends CacheeException {
    ResourceExhausted(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
      super(c, m, r, md, t);
    }
  }

  /** The server cannot be reached or is shutting down; retried with backoff. */
  public static final class Unavailable extends CacheeException {
    Unavailable(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
      super(c, m, r, md, t);
    }
  }

  /** The server is not set up for the call, e.g. prewarm without a prewarm source. */
  public static final class FailedPrecondition extends CacheeException {
    FailedPrecondition(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
      super(c, m, r, md, t);
    }
  }

  /** The call raced another (a running prewarm, a contended read); try again. */
  public static final class Aborted extends CacheeException {
    Aborted(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
      super(c, m, r, md, t);
    }
  }

  /** The call's deadline passed. */
  public static final class DeadlineExceeded extends CacheeException {
    DeadlineExceeded(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
      super(c, m, r, md, t);
    }
  }

  /** The call was cancelled. */
  public static final class Cancelled extends CacheeException {
    Cancelled(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
      super(c, m, r, md, t);
    }
  }

  /** The shared-memory segment contradicts its format. */
  public static final class DataLoss extends CacheeException {
    DataLoss(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
      super(c, m, r, md, t);
    }
  }

  /** Anything else the server or the transport reported. */
  public static final class Internal extends CacheeException {
    Internal(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
      super(c, m, r, md, t);
    }
  }

  /** Maps a gRPC failure to its typed exception. */
  static CacheeException from(StatusRuntimeException e) {
    Status s = e.getStatus();
    String message = s.getDescription() != null ? s.getDescription() : "";
    String reason = null;
    Map<String, String> metadata = Map.of();
    com.google.rpc.Status details = StatusProto.fromThrowable(e);
    if (details != null) {
      for (Any any : details.getDetailsList()) {
        if (any.is(ErrorInfo.class)) {
          try {
            ErrorInfo info = any.unpack(ErrorInfo.class);
            if (DOMAIN.equals(info.getDomain())) {
              reason = info.getReason();
              metadata = info.getMetadataMap();
              break;
            }
          } catch (InvalidProtocolBufferException ignored) {
            // A malformed detail leaves the error untyped by reason, still typed by code.
          }
        }
      }
    }
    return of(s.getCode(), message, reason, metadata, e);
  }

  static CacheeException of(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
    return switch (c) {
      case INVALID_ARGUMENT -> new InvalidArgument(c, m, r, md, t);
      case RESOURCE_EXHAUSTED -> new ResourceExhausted(c, m, r, md, t);
      case UNAVAILABLE -> new Unavailable(c, m, r, md, t);
      case FAILED_PRECONDITION -> new FailedPrecondition(c, m, r, md, t);
      case ABORTED -> new Aborted(c, m, r, md, t);
      case DEADLINE_EXCEEDED -> new DeadlineExceeded(c, m, r, md, t);
      case CANCELLED -> new Cancelled(c, m, r, md, t);
      case DATA_LOSS -> new DataLoss(c, m, r, md, t);
      default -> new Internal(c, m, r, md, t);
    };
  }
}
