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
 * pair (about 20 ns here); n is the number of calls JMH timed. BENCH_TIME_LIMIT
 * (seconds, default 30) bounds the whole run: each path gets a third, one second of it
 * warm-up; BENCH_N is not used, since JMH sizes its samples by time.
 */
public final class BenchRunner {
  public static void main(String[] args) throws RunnerException {
    String limit = System.getenv("BENCH_TIME_LIMIT");
    double total = limit == null || limit.isEmpty() ? 30 : Double.parseDouble(limit);
    // Per path: a forked JVM's start (about 1 s), 1 s of warm-up, the rest measured.
    int measure = (int) Math.max(1, Math.floor(total / 3 - 2));
    String only = args.length > 0 ? args[0] : "shm|grpc|redis";
    for (String path : only.split("\\|")) {
      Options opt = new OptionsBuilder()
          .include(ReadPaths.class.getName() + "\\." + path + "$")
          .forks(1)
          .warmupIterations(1).warmupTime(TimeValue.seconds(1))
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
