package com.cachee.bench;

import java.util.Collection;
import java.util.Locale;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.util.Statistics;

/**
 * The Java row of bench/report's "SDK paths": runs {@link ReadPaths} under JMH and prints
 * one JSON object per path. JMH's sample mode times sampled calls one at a time, so the
 * percentiles are of single calls ("timing": "spaced"), each including one System.nanoTime
 * pair (about 20 ns here); n is the number of calls JMH timed. JMH measures for a time,
 * not a count: each path is measured for as many seconds as BENCH_N (default 20000) calls
 * of the slowest path take, and BENCH_TIME_LIMIT (seconds, default 30) bounds the whole
 * run, a third per path.
 */
public final class BenchRunner {
  public static void main(String[] args) throws RunnerException {
    String limit = System.getenv("BENCH_TIME_LIMIT");
    double total = limit == null || limit.isEmpty() ? 30 : Double.parseDouble(limit);
    // Per path: a forked JVM's start and JMH's own setup (up to 2 s on a loaded machine),
    // warm-up, then enough seconds for BENCH_N calls of the slowest path (gRPC,
    // about 250 µs a call here), within the limit.
    String n = System.getenv("BENCH_N");
    long calls = n == null || n.isEmpty() ? 20_000 : Long.parseLong(n);
    int room = (int) Math.max(1, Math.floor(total / 3 - 3));
    int measure = (int) Math.min(room, Math.max(1, Math.ceil(calls * 250e-6)));
    // The JIT's compiler threads share the machine too: give them as long as the
    // measurement, up to 3 s, where the limit leaves room.
    int warmup = (int) Math.max(1, Math.min(3, Math.min(measure, room - measure)));
    String only = args.length > 0 ? args[0] : "shm|grpc|redis";
    for (String path : only.split("\\|")) {
      Options opt = new OptionsBuilder()
          .include(ReadPaths.class.getName() + "\\." + path + "$")
          .forks(1)
          .warmupIterations(warmup).warmupTime(TimeValue.seconds(1))
          .measurementIterations(measure).measurementTime(TimeValue.seconds(1))
          .jvmArgsAppend("-Xms256m", "-Xmx256m")
          .shouldFailOnError(true)
          .verbosity(org.openjdk.jmh.runner.options.VerboseMode.SILENT)
          .build();
      Collection<RunResult> results = new Runner(opt).run();
      for (RunResult r : results) {
        Statistics s = r.getPrimaryResult().getStatistics();
        System.out.println(String.format(Locale.ROOT,
            "{\"sdk\":\"java\",\"path\":\"%s\",\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"mean_ns\":%.0f,\"n\":%d,\"timing\":\"spaced\"}",
            path, s.getPercentile(50), s.getPercentile(99), s.getMean(), s.getN()));
      }
    }
  }
}
