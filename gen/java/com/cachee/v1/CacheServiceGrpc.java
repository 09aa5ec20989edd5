package com.cachee.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * CacheService reads and writes the cache.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class CacheServiceGrpc {

  private CacheServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "cachee.v1.CacheService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<com.cachee.v1.GetRequest,
      com.cachee.v1.GetResponse> getGetMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Get",
      requestType = com.cachee.v1.GetRequest.class,
      responseType = com.cachee.v1.GetResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.cachee.v1.GetRequest,
      com.cachee.v1.GetResponse> getGetMethod() {
    io.grpc.MethodDescriptor<com.cachee.v1.GetRequest, com.cachee.v1.GetResponse> getGetMethod;
    if ((getGetMethod = CacheServiceGrpc.getGetMethod) == null) {
      synchronized (CacheServiceGrpc.class) {
        if ((getGetMethod = CacheServiceGrpc.getGetMethod) == null) {
          CacheServiceGrpc.getGetMethod = getGetMethod =
              io.grpc.MethodDescriptor.<com.cachee.v1.GetRequest, com.cachee.v1.GetResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Get"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.GetRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.GetResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CacheServiceMethodDescriptorSupplier("Get"))
              .build();
        }
      }
    }
    return getGetMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.cachee.v1.SetRequest,
      com.cachee.v1.SetResponse> getSetMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Set",
      requestType = com.cachee.v1.SetRequest.class,
      responseType = com.cachee.v1.SetResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.cachee.v1.SetRequest,
      com.cachee.v1.SetResponse> getSetMethod() {
    io.grpc.MethodDescriptor<com.cachee.v1.SetRequest, com.cachee.v1.SetResponse> getSetMethod;
    if ((getSetMethod = CacheServiceGrpc.getSetMethod) == null) {
      synchronized (CacheServiceGrpc.class) {
        if ((getSetMethod = CacheServiceGrpc.getSetMethod) == null) {
          CacheServiceGrpc.getSetMethod = getSetMethod =
              io.grpc.MethodDescriptor.<com.cachee.v1.SetRequest, com.cachee.v1.SetResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Set"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.SetRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.SetResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CacheServiceMethodDescriptorSupplier("Set"))
              .build();
        }
      }
    }
    return getSetMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.cachee.v1.DeleteRequest,
      com.cachee.v1.DeleteResponse> getDeleteMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Delete",
      requestType = com.cachee.v1.DeleteRequest.class,
      responseType = com.cachee.v1.DeleteResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.cachee.v1.DeleteRequest,
      com.cachee.v1.DeleteResponse> getDeleteMethod() {
    io.grpc.MethodDescriptor<com.cachee.v1.DeleteRequest, com.cachee.v1.DeleteResponse> getDeleteMethod;
    if ((getDeleteMethod = CacheServiceGrpc.getDeleteMethod) == null) {
      synchronized (CacheServiceGrpc.class) {
        if ((getDeleteMethod = CacheServiceGrpc.getDeleteMethod) == null) {
          CacheServiceGrpc.getDeleteMethod = getDeleteMethod =
              io.grpc.MethodDescriptor.<com.cachee.v1.DeleteRequest, com.cachee.v1.DeleteResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Delete"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.DeleteRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.DeleteResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CacheServiceMethodDescriptorSupplier("Delete"))
              .build();
        }
      }
    }
    return getDeleteMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.cachee.v1.BatchGetRequest,
      com.cachee.v1.BatchGetResponse> getBatchGetMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "BatchGet",
      requestType = com.cachee.v1.BatchGetRequest.class,
      responseType = com.cachee.v1.BatchGetResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.cachee.v1.BatchGetRequest,
      com.cachee.v1.BatchGetResponse> getBatchGetMethod() {
    io.grpc.MethodDescriptor<com.cachee.v1.BatchGetRequest, com.cachee.v1.BatchGetResponse> getBatchGetMethod;
    if ((getBatchGetMethod = CacheServiceGrpc.getBatchGetMethod) == null) {
      synchronized (CacheServiceGrpc.class) {
        if ((getBatchGetMethod = CacheServiceGrpc.getBatchGetMethod) == null) {
          CacheServiceGrpc.getBatchGetMethod = getBatchGetMethod =
              io.grpc.MethodDescriptor.<com.cachee.v1.BatchGetRequest, com.cachee.v1.BatchGetResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "BatchGet"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.BatchGetRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.BatchGetResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CacheServiceMethodDescriptorSupplier("BatchGet"))
              .build();
        }
      }
    }
    return getBatchGetMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.cachee.v1.BatchSetRequest,
      com.cachee.v1.BatchSetResponse> getBatchSetMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "BatchSet",
      requestType = com.cachee.v1.BatchSetRequest.class,
      responseType = com.cachee.v1.BatchSetResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.cachee.v1.BatchSetRequest,
      com.cachee.v1.BatchSetResponse> getBatchSetMethod() {
    io.grpc.MethodDescriptor<com.cachee.v1.BatchSetRequest, com.cachee.v1.BatchSetResponse> getBatchSetMethod;
    if ((getBatchSetMethod = CacheServiceGrpc.getBatchSetMethod) == null) {
      synchronized (CacheServiceGrpc.class) {
        if ((getBatchSetMethod = CacheServiceGrpc.getBatchSetMethod) == null) {
          CacheServiceGrpc.getBatchSetMethod = getBatchSetMethod =
              io.grpc.MethodDescriptor.<com.cachee.v1.BatchSetRequest, com.cachee.v1.BatchSetResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "BatchSet"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.BatchSetRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.BatchSetResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CacheServiceMethodDescriptorSupplier("BatchSet"))
              .build();
        }
      }
    }
    return getBatchSetMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.cachee.v1.PrewarmRequest,
      com.cachee.v1.PrewarmResponse> getPrewarmMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Prewarm",
      requestType = com.cachee.v1.PrewarmRequest.class,
      responseType = com.cachee.v1.PrewarmResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<com.cachee.v1.PrewarmRequest,
      com.cachee.v1.PrewarmResponse> getPrewarmMethod() {
    io.grpc.MethodDescriptor<com.cachee.v1.PrewarmRequest, com.cachee.v1.PrewarmResponse> getPrewarmMethod;
    if ((getPrewarmMethod = CacheServiceGrpc.getPrewarmMethod) == null) {
      synchronized (CacheServiceGrpc.class) {
        if ((getPrewarmMethod = CacheServiceGrpc.getPrewarmMethod) == null) {
          CacheServiceGrpc.getPrewarmMethod = getPrewarmMethod =
              io.grpc.MethodDescriptor.<com.cachee.v1.PrewarmRequest, com.cachee.v1.PrewarmResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Prewarm"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.PrewarmRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.PrewarmResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CacheServiceMethodDescriptorSupplier("Prewarm"))
              .build();
        }
      }
    }
    return getPrewarmMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.cachee.v1.StatsRequest,
      com.cachee.v1.StatsResponse> getStatsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Stats",
      requestType = com.cachee.v1.StatsRequest.class,
      responseType = com.cachee.v1.StatsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.cachee.v1.StatsRequest,
      com.cachee.v1.StatsResponse> getStatsMethod() {
    io.grpc.MethodDescriptor<com.cachee.v1.StatsRequest, com.cachee.v1.StatsResponse> getStatsMethod;
    if ((getStatsMethod = CacheServiceGrpc.getStatsMethod) == null) {
      synchronized (CacheServiceGrpc.class) {
        if ((getStatsMethod = CacheServiceGrpc.getStatsMethod) == null) {
          CacheServiceGrpc.getStatsMethod = getStatsMethod =
              io.grpc.MethodDescriptor.<com.cachee.v1.StatsRequest, com.cachee.v1.StatsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Stats"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.StatsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.StatsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CacheServiceMethodDescriptorSupplier("Stats"))
              .build();
        }
      }
    }
    return getStatsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<com.cachee.v1.RecordAccessRequest,
      com.cachee.v1.RecordAccessResponse> getRecordAccessMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RecordAccess",
      requestType = com.cachee.v1.RecordAccessRequest.class,
      responseType = com.cachee.v1.RecordAccessResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<com.cachee.v1.RecordAccessRequest,
      com.cachee.v1.RecordAccessResponse> getRecordAccessMethod() {
    io.grpc.MethodDescriptor<com.cachee.v1.RecordAccessRequest, com.cachee.v1.RecordAccessResponse> getRecordAccessMethod;
    if ((getRecordAccessMethod = CacheServiceGrpc.getRecordAccessMethod) == null) {
      synchronized (CacheServiceGrpc.class) {
        if ((getRecordAccessMethod = CacheServiceGrpc.getRecordAccessMethod) == null) {
          CacheServiceGrpc.getRecordAccessMethod = getRecordAccessMethod =
              io.grpc.MethodDescriptor.<com.cachee.v1.RecordAccessRequest, com.cachee.v1.RecordAccessResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RecordAccess"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.RecordAccessRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.cachee.v1.RecordAccessResponse.getDefaultInstance()))
              .setSchemaDescriptor(new CacheServiceMethodDescriptorSupplier("RecordAccess"))
              .build();
        }
      }
    }
    return getRecordAccessMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static CacheServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<CacheServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<CacheServiceStub>() {
        @java.lang.Override
        public CacheServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new CacheServiceStub(channel, callOptions);
        }
      };
    return CacheServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static CacheServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<CacheServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<CacheServiceBlockingV2Stub>() {
        @java.lang.Override
        public CacheServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new CacheServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return CacheServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static CacheServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<CacheServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<CacheServiceBlockingStub>() {
        @java.lang.Override
        public CacheServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new CacheServiceBlockingStub(channel, callOptions);
        }
      };
    return CacheServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static CacheServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<CacheServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<CacheServiceFutureStub>() {
        @java.lang.Override
        public CacheServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new CacheServiceFutureStub(channel, callOptions);
        }
      };
    return CacheServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * CacheService reads and writes the cache.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Get returns the value stored under a key. A missing or expired key is a
     * normal response with found = false, not an error.
     * </pre>
     */
    default void get(com.cachee.v1.GetRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.GetResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetMethod(), responseObserver);
    }

    /**
     * <pre>
     * Set stores a value under a key, optionally with a time to live and a
     * condition on the key's presence.
     * </pre>
     */
    default void set(com.cachee.v1.SetRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.SetResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSetMethod(), responseObserver);
    }

    /**
     * <pre>
     * Delete removes a key. Deleting a missing key is not an error.
     * </pre>
     */
    default void delete(com.cachee.v1.DeleteRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.DeleteResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteMethod(), responseObserver);
    }

    /**
     * <pre>
     * BatchGet looks up several keys in one call; results come back in the
     * order of the keys.
     * </pre>
     */
    default void batchGet(com.cachee.v1.BatchGetRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.BatchGetResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getBatchGetMethod(), responseObserver);
    }

    /**
     * <pre>
     * BatchSet stores several items in one call. Items are applied in order and
     * independently: the call fails with the first item's error, and items other
     * than that one may have been stored by then.
     * </pre>
     */
    default void batchSet(com.cachee.v1.BatchSetRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.BatchSetResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getBatchSetMethod(), responseObserver);
    }

    /**
     * <pre>
     * Prewarm loads the hottest keys from the configured prewarm source (an L2
     * cache such as Redis). It streams progress and ends with a message that
     * holds the final counts. Without a configured source it fails with
     * FAILED_PRECONDITION and reason PREWARM_NOT_CONFIGURED.
     * </pre>
     */
    default void prewarm(com.cachee.v1.PrewarmRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.PrewarmResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getPrewarmMethod(), responseObserver);
    }

    /**
     * <pre>
     * Stats returns the cache's counters, hit rate, uptime and latency
     * quantiles.
     * </pre>
     */
    default void stats(com.cachee.v1.StatsRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.StatsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getStatsMethod(), responseObserver);
    }

    /**
     * <pre>
     * RecordAccess reports hits that a client made by reading the shared-memory
     * segment directly, so that they count in the statistics and in the
     * eviction policy. Only the Go SDK's shared-memory reader calls it.
     * </pre>
     */
    default void recordAccess(com.cachee.v1.RecordAccessRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.RecordAccessResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRecordAccessMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service CacheService.
   * <pre>
   * CacheService reads and writes the cache.
   * </pre>
   */
  public static abstract class CacheServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return CacheServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service CacheService.
   * <pre>
   * CacheService reads and writes the cache.
   * </pre>
   */
  public static final class CacheServiceStub
      extends io.grpc.stub.AbstractAsyncStub<CacheServiceStub> {
    private CacheServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected CacheServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new CacheServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Get returns the value stored under a key. A missing or expired key is a
     * normal response with found = false, not an error.
     * </pre>
     */
    public void get(com.cachee.v1.GetRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.GetResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Set stores a value under a key, optionally with a time to live and a
     * condition on the key's presence.
     * </pre>
     */
    public void set(com.cachee.v1.SetRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.SetResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getSetMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Delete removes a key. Deleting a missing key is not an error.
     * </pre>
     */
    public void delete(com.cachee.v1.DeleteRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.DeleteResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * BatchGet looks up several keys in one call; results come back in the
     * order of the keys.
     * </pre>
     */
    public void batchGet(com.cachee.v1.BatchGetRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.BatchGetResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getBatchGetMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * BatchSet stores several items in one call. Items are applied in order and
     * independently: the call fails with the first item's error, and items other
     * than that one may have been stored by then.
     * </pre>
     */
    public void batchSet(com.cachee.v1.BatchSetRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.BatchSetResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getBatchSetMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Prewarm loads the hottest keys from the configured prewarm source (an L2
     * cache such as Redis). It streams progress and ends with a message that
     * holds the final counts. Without a configured source it fails with
     * FAILED_PRECONDITION and reason PREWARM_NOT_CONFIGURED.
     * </pre>
     */
    public void prewarm(com.cachee.v1.PrewarmRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.PrewarmResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getPrewarmMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Stats returns the cache's counters, hit rate, uptime and latency
     * quantiles.
     * </pre>
     */
    public void stats(com.cachee.v1.StatsRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.StatsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getStatsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * RecordAccess reports hits that a client made by reading the shared-memory
     * segment directly, so that they count in the statistics and in the
     * eviction policy. Only the Go SDK's shared-memory reader calls it.
     * </pre>
     */
    public void recordAccess(com.cachee.v1.RecordAccessRequest request,
        io.grpc.stub.StreamObserver<com.cachee.v1.RecordAccessResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRecordAccessMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service CacheService.
   * <pre>
   * CacheService reads and writes the cache.
   * </pre>
   */
  public static final class CacheServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<CacheServiceBlockingV2Stub> {
    private CacheServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected CacheServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new CacheServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Get returns the value stored under a key. A missing or expired key is a
     * normal response with found = false, not an error.
     * </pre>
     */
    public com.cachee.v1.GetResponse get(com.cachee.v1.GetRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Set stores a value under a key, optionally with a time to live and a
     * condition on the key's presence.
     * </pre>
     */
    public com.cachee.v1.SetResponse set(com.cachee.v1.SetRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getSetMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Delete removes a key. Deleting a missing key is not an error.
     * </pre>
     */
    public com.cachee.v1.DeleteResponse delete(com.cachee.v1.DeleteRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDeleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * BatchGet looks up several keys in one call; results come back in the
     * order of the keys.
     * </pre>
     */
    public com.cachee.v1.BatchGetResponse batchGet(com.cachee.v1.BatchGetRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getBatchGetMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * BatchSet stores several items in one call. Items are applied in order and
     * independently: the call fails with the first item's error, and items other
     * than that one may have been stored by then.
     * </pre>
     */
    public com.cachee.v1.BatchSetResponse batchSet(com.cachee.v1.BatchSetRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getBatchSetMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Prewarm loads the hottest keys from the configured prewarm source (an L2
     * cache such as Redis). It streams progress and ends with a message that
     * holds the final counts. Without a configured source it fails with
     * FAILED_PRECONDITION and reason PREWARM_NOT_CONFIGURED.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, com.cachee.v1.PrewarmResponse>
        prewarm(com.cachee.v1.PrewarmRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getPrewarmMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Stats returns the cache's counters, hit rate, uptime and latency
     * quantiles.
     * </pre>
     */
    public com.cachee.v1.StatsResponse stats(com.cachee.v1.StatsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getStatsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * RecordAccess reports hits that a client made by reading the shared-memory
     * segment directly, so that they count in the statistics and in the
     * eviction policy. Only the Go SDK's shared-memory reader calls it.
     * </pre>
     */
    public com.cachee.v1.RecordAccessResponse recordAccess(com.cachee.v1.RecordAccessRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRecordAccessMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service CacheService.
   * <pre>
   * CacheService reads and writes the cache.
   * </pre>
   */
  public static final class CacheServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<CacheServiceBlockingStub> {
    private CacheServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected CacheServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new CacheServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Get returns the value stored under a key. A missing or expired key is a
     * normal response with found = false, not an error.
     * </pre>
     */
    public com.cachee.v1.GetResponse get(com.cachee.v1.GetRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Set stores a value under a key, optionally with a time to live and a
     * condition on the key's presence.
     * </pre>
     */
    public com.cachee.v1.SetResponse set(com.cachee.v1.SetRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getSetMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Delete removes a key. Deleting a missing key is not an error.
     * </pre>
     */
    public com.cachee.v1.DeleteResponse delete(com.cachee.v1.DeleteRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * BatchGet looks up several keys in one call; results come back in the
     * order of the keys.
     * </pre>
     */
    public com.cachee.v1.BatchGetResponse batchGet(com.cachee.v1.BatchGetRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getBatchGetMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * BatchSet stores several items in one call. Items are applied in order and
     * independently: the call fails with the first item's error, and items other
     * than that one may have been stored by then.
     * </pre>
     */
    public com.cachee.v1.BatchSetResponse batchSet(com.cachee.v1.BatchSetRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getBatchSetMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Prewarm loads the hottest keys from the configured prewarm source (an L2
     * cache such as Redis). It streams progress and ends with a message that
     * holds the final counts. Without a configured source it fails with
     * FAILED_PRECONDITION and reason PREWARM_NOT_CONFIGURED.
     * </pre>
     */
    public java.util.Iterator<com.cachee.v1.PrewarmResponse> prewarm(
        com.cachee.v1.PrewarmRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getPrewarmMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Stats returns the cache's counters, hit rate, uptime and latency
     * quantiles.
     * </pre>
     */
    public com.cachee.v1.StatsResponse stats(com.cachee.v1.StatsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getStatsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * RecordAccess reports hits that a client made by reading the shared-memory
     * segment directly, so that they count in the statistics and in the
     * eviction policy. Only the Go SDK's shared-memory reader calls it.
     * </pre>
     */
    public com.cachee.v1.RecordAccessResponse recordAccess(com.cachee.v1.RecordAccessRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRecordAccessMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service CacheService.
   * <pre>
   * CacheService reads and writes the cache.
   * </pre>
   */
  public static final class CacheServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<CacheServiceFutureStub> {
    private CacheServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected CacheServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new CacheServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Get returns the value stored under a key. A missing or expired key is a
     * normal response with found = false, not an error.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.cachee.v1.GetResponse> get(
        com.cachee.v1.GetRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Set stores a value under a key, optionally with a time to live and a
     * condition on the key's presence.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.cachee.v1.SetResponse> set(
        com.cachee.v1.SetRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getSetMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Delete removes a key. Deleting a missing key is not an error.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.cachee.v1.DeleteResponse> delete(
        com.cachee.v1.DeleteRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * BatchGet looks up several keys in one call; results come back in the
     * order of the keys.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.cachee.v1.BatchGetResponse> batchGet(
        com.cachee.v1.BatchGetRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getBatchGetMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * BatchSet stores several items in one call. Items are applied in order and
     * independently: the call fails with the first item's error, and items other
     * than that one may have been stored by then.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.cachee.v1.BatchSetResponse> batchSet(
        com.cachee.v1.BatchSetRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getBatchSetMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Stats returns the cache's counters, hit rate, uptime and latency
     * quantiles.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.cachee.v1.StatsResponse> stats(
        com.cachee.v1.StatsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getStatsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * RecordAccess reports hits that a client made by reading the shared-memory
     * segment directly, so that they count in the statistics and in the
     * eviction policy. Only the Go SDK's shared-memory reader calls it.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.cachee.v1.RecordAccessResponse> recordAccess(
        com.cachee.v1.RecordAccessRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRecordAccessMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_GET = 0;
  private static final int METHODID_SET = 1;
  private static final int METHODID_DELETE = 2;
  private static final int METHODID_BATCH_GET = 3;
  private static final int METHODID_BATCH_SET = 4;
  private static final int METHODID_PREWARM = 5;
  private static final int METHODID_STATS = 6;
  private static final int METHODID_RECORD_ACCESS = 7;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_GET:
          serviceImpl.get((com.cachee.v1.GetRequest) request,
              (io.grpc.stub.StreamObserver<com.cachee.v1.GetResponse>) responseObserver);
          break;
        case METHODID_SET:
          serviceImpl.set((com.cachee.v1.SetRequest) request,
              (io.grpc.stub.StreamObserver<com.cachee.v1.SetResponse>) responseObserver);
          break;
        case METHODID_DELETE:
          serviceImpl.delete((com.cachee.v1.DeleteRequest) request,
              (io.grpc.stub.StreamObserver<com.cachee.v1.DeleteResponse>) responseObserver);
          break;
        case METHODID_BATCH_GET:
          serviceImpl.batchGet((com.cachee.v1.BatchGetRequest) request,
              (io.grpc.stub.StreamObserver<com.cachee.v1.BatchGetResponse>) responseObserver);
          break;
        case METHODID_BATCH_SET:
          serviceImpl.batchSet((com.cachee.v1.BatchSetRequest) request,
              (io.grpc.stub.StreamObserver<com.cachee.v1.BatchSetResponse>) responseObserver);
          break;
        case METHODID_PREWARM:
          serviceImpl.prewarm((com.cachee.v1.PrewarmRequest) request,
              (io.grpc.stub.StreamObserver<com.cachee.v1.PrewarmResponse>) responseObserver);
          break;
        case METHODID_STATS:
          serviceImpl.stats((com.cachee.v1.StatsRequest) request,
              (io.grpc.stub.StreamObserver<com.cachee.v1.StatsResponse>) responseObserver);
          break;
        case METHODID_RECORD_ACCESS:
          serviceImpl.recordAccess((com.cachee.v1.RecordAccessRequest) request,
              (io.grpc.stub.StreamObserver<com.cachee.v1.RecordAccessResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getGetMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.cachee.v1.GetRequest,
              com.cachee.v1.GetResponse>(
                service, METHODID_GET)))
        .addMethod(
          getSetMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.cachee.v1.SetRequest,
              com.cachee.v1.SetResponse>(
                service, METHODID_SET)))
        .addMethod(
          getDeleteMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.cachee.v1.DeleteRequest,
              com.cachee.v1.DeleteResponse>(
                service, METHODID_DELETE)))
        .addMethod(
          getBatchGetMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.cachee.v1.BatchGetRequest,
              com.cachee.v1.BatchGetResponse>(
                service, METHODID_BATCH_GET)))
        .addMethod(
          getBatchSetMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.cachee.v1.BatchSetRequest,
              com.cachee.v1.BatchSetResponse>(
                service, METHODID_BATCH_SET)))
        .addMethod(
          getPrewarmMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              com.cachee.v1.PrewarmRequest,
              com.cachee.v1.PrewarmResponse>(
                service, METHODID_PREWARM)))
        .addMethod(
          getStatsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.cachee.v1.StatsRequest,
              com.cachee.v1.StatsResponse>(
                service, METHODID_STATS)))
        .addMethod(
          getRecordAccessMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              com.cachee.v1.RecordAccessRequest,
              com.cachee.v1.RecordAccessResponse>(
                service, METHODID_RECORD_ACCESS)))
        .build();
  }

  private static abstract class CacheServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    CacheServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return com.cachee.v1.CacheServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("CacheService");
    }
  }

  private static final class CacheServiceFileDescriptorSupplier
      extends CacheServiceBaseDescriptorSupplier {
    CacheServiceFileDescriptorSupplier() {}
  }

  private static final class CacheServiceMethodDescriptorSupplier
      extends CacheServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    CacheServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (CacheServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new CacheServiceFileDescriptorSupplier())
              .addMethod(getGetMethod())
              .addMethod(getSetMethod())
              .addMethod(getDeleteMethod())
              .addMethod(getBatchGetMethod())
              .addMethod(getBatchSetMethod())
              .addMethod(getPrewarmMethod())
              .addMethod(getStatsMethod())
              .addMethod(getRecordAccessMethod())
              .build();
        }
      }
    }
    return result;
  }
}
