package com.cachee.client;

import com.cachee.v1.ErrorReason;
import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.Map;

/**
 * A failed call (docs/sdk-contract.md, "Error classes"). Catch a nested subclass to
 * handle one kind of failure; some belong to a broader one as well ({@link KeyEmpty} is
 * an {@link InvalidArgument}, {@link Overloaded} an {@link Unavailable}).
 *
 * <p>{@link #code()} is the gRPC status code, {@link #reason()} the server's
 * google.rpc.ErrorInfo reason ({@code "VALUE_TOO_LARGE"}: a name of the ErrorReason enum
 * without its {@code ERROR_REASON_} prefix; docs/grpc.md lists them) or null when the
 * error came from gRPC itself, and {@link #metadata()} the ErrorInfo metadata ({@code
 * field}, {@code size}, {@code limit}). The gRPC failure, when there was one, is the
 * {@link #getCause() cause}.
 */
public class CacheeException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** The domain of every ErrorInfo that cachee attaches. */
  public static final String DOMAIN = "cachee";

  private final Status.Code code;
  private final String rawMessage;
  private final String reason;
  private final Map<String, String> metadata;
  /** The call ran out of the client's default deadline: the sidecar did not answer in time. */
  private final boolean defaultDeadline;

  CacheeException(Init i) {
    super(i.reason != null ? i.code + " " + i.reason + ": " + i.message : i.code + ": " + i.message, i.cause);
    this.code = i.code;
    this.rawMessage = i.message;
    this.reason = i.reason;
    this.metadata = Map.copyOf(i.metadata);
    this.defaultDeadline = i.defaultDeadline;
  }

  /** What every exception is made of; one argument, so that each subclass is one line. */
  record Init(Status.Code code, String message, String reason, Map<String, String> metadata, Throwable cause,
      boolean defaultDeadline) {}

  public Status.Code code() {
    return code;
  }

  /** The ErrorInfo reason, or null when the error did not come from cachee's handlers. */
  public String reason() {
    return reason;
  }

  /** The reason as the generated enum, or null when there is none or this client does not know it. */
  public ErrorReason errorReason() {
    return reasonOf(reason);
  }

  public Map<String, String> metadata() {
    return metadata;
  }

  /**
   * Whether this failure belongs to {@code kind}: it is an instance of it, or {@code kind}
   * is the broader class the contract also gives it. Java's single inheritance makes one
   * such case an exception: a call that ran out of the client's default deadline is a
   * {@link DeadlineExceeded} and also, for this method only, an {@link Unavailable}.
   */
  public boolean is(Class<? extends CacheeException> kind) {
    return kind.isInstance(this) || (defaultDeadline && kind == Unavailable.class);
  }

  /**
   * Serializes as the same class with the same code, reason and metadata; the gRPC
   * failure it was caused by (whose Status grpc-java does not make serializable) travels
   * as a plain exception with its text and stack.
   */
  protected Object writeReplace() throws java.io.ObjectStreamException {
    Throwable c = getCause();
    if (c == null || c instanceof java.io.Serializable && !(c instanceof StatusRuntimeException) && !(c instanceof io.grpc.StatusException)) {
      return this;
    }
    RuntimeException plain = new RuntimeException(c.toString());
    plain.setStackTrace(c.getStackTrace());
    CacheeException copy = this instanceof Closed ? closed(plain) : of(new Init(code, rawMessage, reason, metadata, plain, defaultDeadline));
    copy.setStackTrace(getStackTrace());
    return copy;
  }

  /** A request field is invalid (reason INVALID_FIELD, or none). */
  public static class InvalidArgument extends CacheeException {
    InvalidArgument(Init i) {
      super(i);
    }
  }

  /** The key is empty. */
  public static final class KeyEmpty extends InvalidArgument {
    KeyEmpty(Init i) {
      super(i);
    }
  }

  /** The key is longer than the sidecar's --max-key-size. */
  public static final class KeyTooLarge extends InvalidArgument {
    KeyTooLarge(Init i) {
      super(i);
    }
  }

  /** The value is longer than the sidecar's --max-value-size. */
  public static final class ValueTooLarge extends InvalidArgument {
    ValueTooLarge(Init i) {
      super(i);
    }
  }

  /** The time to live is negative or out of range. */
  public static final class InvalidTTL extends InvalidArgument {
    InvalidTTL(Init i) {
      super(i);
    }
  }

  /** A batch holds more items than the sidecar accepts in one call. */
  public static final class BatchTooLarge extends InvalidArgument {
    BatchTooLarge(Init i) {
      super(i);
    }
  }

  /** The request is larger than one message may be (the sidecar's limit, or gRPC's own). */
  public static final class MessageTooLarge extends InvalidArgument {
    MessageTooLarge(Init i) {
      super(i);
    }
  }

  /** The answer would be larger than the sidecar sends in one message. */
  public static final class ResponseTooLarge extends CacheeException {
    ResponseTooLarge(Init i) {
      super(i);
    }
  }

  /** The cache is full and evicts nothing (--eviction=noeviction). */
  public static final class OutOfMemory extends CacheeException {
    OutOfMemory(Init i) {
      super(i);
    }
  }

  /** The sidecar cannot be reached, is restarting or draining, or did not answer in time. */
  public static class Unavailable extends CacheeException {
    Unavailable(Init i) {
      super(i);
    }
  }

  /** The sidecar refused the call before applying it: its client memory budget is spent. */
  public static final class Overloaded extends Unavailable {
    Overloaded(Init i) {
      super(i);
    }
  }

  /** The L2 behind the sidecar could not be reached, or answered too late. */
  public static final class L2Unavailable extends Unavailable {
    L2Unavailable(Init i) {
      super(i);
    }
  }

  /** The sidecar requires a bearer token (--auth-token) and the call had none, or a wrong one. */
  public static final class Unauthenticated extends CacheeException {
    Unauthenticated(Init i) {
      super(i);
    }
  }

  /** A read kept racing the sidecar's writes and gave up. */
  public static final class Contended extends CacheeException {
    Contended(Init i) {
      super(i);
    }
  }

  /** The sidecar's segment contradicts its format. */
  public static final class Corrupt extends CacheeException {
    Corrupt(Init i) {
      super(i);
    }
  }

  /** The key holds another type of value than the call reads: a get of a hash written over RESP. */
  public static final class WrongType extends CacheeException {
    WrongType(Init i) {
      super(i);
    }
  }

  /** Prewarm on a sidecar without --prewarm-source. */
  public static final class PrewarmNotConfigured extends CacheeException {
    PrewarmNotConfigured(Init i) {
      super(i);
    }
  }

  /** A prewarm is already running. */
  public static final class PrewarmRunning extends CacheeException {
    PrewarmRunning(Init i) {
      super(i);
    }
  }

  /** The prewarm source could not be reached. */
  public static final class PrewarmSourceUnavailable extends CacheeException {
    PrewarmSourceUnavailable(Init i) {
      super(i);
    }
  }

  /** The call's deadline passed. See {@link #is} for the client's default deadline. */
  public static final class DeadlineExceeded extends CacheeException {
    DeadlineExceeded(Init i) {
      super(i);
    }
  }

  /** The call was cancelled (its thread interrupted, or its gRPC Context cancelled). */
  public static final class Canceled extends CacheeException {
    Canceled(Init i) {
      super(i);
    }
  }

  /** A call on a closed client. */
  public static final class Closed extends CacheeException {
    Closed(Init i) {
      super(i);
    }
  }

  /** Anything else the sidecar or the transport reported. */
  public static final class Internal extends CacheeException {
    Internal(Init i) {
      super(i);
    }
  }

  private static final String PREFIX = "ERROR_REASON_";

  /** The reason string of an enum value: its name without the prefix. */
  static String reasonName(ErrorReason r) {
    return r.name().substring(PREFIX.length());
  }

  static ErrorReason reasonOf(String reason) {
    if (reason == null || reason.isEmpty()) {
      return null;
    }
    try {
      ErrorReason r = ErrorReason.valueOf(PREFIX + reason);
      return r == ErrorReason.ERROR_REASON_UNSPECIFIED ? null : r;
    } catch (IllegalArgumentException e) {
      return null; // a reason from a newer sidecar: the code decides
    }
  }

  /** Maps a gRPC failure to its typed exception, which keeps it as its cause. */
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
    return of(new Init(s.getCode(), message, reason, metadata, e, false));
  }

  static CacheeException of(Status.Code c, String m, String r, Map<String, String> md, Throwable t) {
    return of(new Init(c, m, r, md, t, false));
  }

  /** The failure a call on a closed client raises. */
  static Closed closed() {
    return closed(null);
  }

  /** A call on a closed client, which a failure of the closing channel may have caused. */
  static Closed closed(Throwable cause) {
    return new Closed(new Init(Status.Code.CANCELLED, "the client is closed", null, Map.of(), cause, false));
  }

  /** The client's default deadline ran out (the caller gave none). */
  static DeadlineExceeded defaultDeadline(Throwable cause) {
    // (of(Init) with defaultDeadline set gives the same, for writeReplace.)
    return new DeadlineExceeded(new Init(Status.Code.DEADLINE_EXCEEDED,
        "the sidecar did not answer within the client's default deadline", null, Map.of(), cause, true));
  }

  /** The class a reason decides when this client knows it, else the one the code decides. */
  static CacheeException of(Init i) {
    if (i.defaultDeadline) {
      return new DeadlineExceeded(i);
    }
    ErrorReason r = reasonOf(i.reason);
    if (r != null) {
      switch (r) {
        case ERROR_REASON_KEY_EMPTY: return new KeyEmpty(i);
        case ERROR_REASON_KEY_TOO_LARGE: return new KeyTooLarge(i);
        case ERROR_REASON_VALUE_TOO_LARGE: return new ValueTooLarge(i);
        case ERROR_REASON_MESSAGE_TOO_LARGE: return new MessageTooLarge(i);
        case ERROR_REASON_INVALID_TTL: return new InvalidTTL(i);
        case ERROR_REASON_BATCH_TOO_LARGE: return new BatchTooLarge(i);
        case ERROR_REASON_INVALID_FIELD: return new InvalidArgument(i);
        case ERROR_REASON_UNAUTHENTICATED: return new Unauthenticated(i);
        case ERROR_REASON_OVERLOADED: return new Overloaded(i);
        case ERROR_REASON_RESPONSE_TOO_LARGE: return new ResponseTooLarge(i);
        case ERROR_REASON_OUT_OF_MEMORY: return new OutOfMemory(i);
        case ERROR_REASON_SHUTTING_DOWN: return new Unavailable(i);
        case ERROR_REASON_READ_CONTENDED: return new Contended(i);
        case ERROR_REASON_SEGMENT_CORRUPT: return new Corrupt(i);
        case ERROR_REASON_WRONG_TYPE: return new WrongType(i);
        case ERROR_REASON_PREWARM_NOT_CONFIGURED: return new PrewarmNotConfigured(i);
        case ERROR_REASON_PREWARM_RUNNING: return new PrewarmRunning(i);
        case ERROR_REASON_PREWARM_SOURCE_UNAVAILABLE: return new PrewarmSourceUnavailable(i);
        case ERROR_REASON_L2_UNAVAILABLE: return new L2Unavailable(i);
        case ERROR_REASON_DEADLINE_EXCEEDED: return new DeadlineExceeded(i);
        case ERROR_REASON_CANCELED: return new Canceled(i);
        case ERROR_REASON_INTERNAL: return new Internal(i);
        default: break;
      }
    }
    switch (i.code) {
      case INVALID_ARGUMENT: return new InvalidArgument(i);
      case RESOURCE_EXHAUSTED: return new MessageTooLarge(i); // gRPC's own message size limit
      case UNAVAILABLE: return new Unavailable(i);
      case UNAUTHENTICATED: return new Unauthenticated(i);
      case DATA_LOSS: return new Corrupt(i);
      case DEADLINE_EXCEEDED: return new DeadlineExceeded(i);
      case CANCELLED: return new Canceled(i);
      default: return new Internal(i);
    }
  }
}
