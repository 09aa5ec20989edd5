#!/bin/sh
# The Java runner of bench/report's "SDK paths" section: builds the JMH benchmarks
# (mvn -Pbench; nothing of it is in the test build) and prints one JSON line per path
# (shm, grpc, redis). The environment names the sidecar: CACHEE_SOCKET, CACHEE_SHM,
# BENCH_KEY and BENCH_TIME_LIMIT (seconds for the whole run); see
# src/bench/java/com/cachee/bench/BenchRunner.java. --build-only builds (bench/report
# does, before its runs); without it, it builds only when nothing was built yet.
set -eu
cd "$(dirname "$0")"
if [ "${1:-}" = "--build-only" ] || [ ! -f target/bench-classpath.txt ]; then
	mvn -B -q -ntp -Pbench test-compile \
		org.apache.maven.plugins:maven-dependency-plugin:3.8.1:build-classpath \
		-Dmdep.outputFile=target/bench-classpath.txt -Dmdep.includeScope=test >&2
fi
[ "${1:-}" = "--build-only" ] && exit 0
exec java -cp "target/test-classes:target/classes:$(cat target/bench-classpath.txt)" com.cachee.bench.BenchRunner "$@"
