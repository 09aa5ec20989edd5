package com.cachee.client;

import java.time.Duration;

/** The server's counters since it started; see proto/cachee/v1/cache_service.proto. */
public record Stats(
    long hits,
    long misses,
    long sets,
    long deletes,
    long evictions,
    long expirations,
    long entries,
    long memoryUsedBytes,
    long memoryLimitBytes,
    double hitRate,
    Duration uptime,
    Duration latencyP50,
    Duration latencyP95,
    Duration latencyP99,
    long generation,
    String eviction,
    String segmentPath) {}
