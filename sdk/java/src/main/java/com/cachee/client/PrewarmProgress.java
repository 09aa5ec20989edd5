package com.cachee.client;

import java.time.Duration;

/** How far a prewarm has got; {@code done} is true on the final counts. */
public record PrewarmProgress(long requested, long loaded, long skipped, long failed, Duration elapsed, boolean done) {}
