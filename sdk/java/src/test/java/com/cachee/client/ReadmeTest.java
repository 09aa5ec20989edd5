package com.cachee.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** Runs the README's example, as a user would, against a real cachee. */
class ReadmeTest {
  @Test
  @org.junit.jupiter.api.Timeout(value = 6, unit = TimeUnit.MINUTES) // up to three fresh JVMs on a loaded machine
  void readmeExamplePrintsTheValue() throws Exception {
    String readme = Files.readString(Path.of("README.md"));
    Matcher m = Pattern.compile("## Example\n\n```java\n(.*?)```", Pattern.DOTALL).matcher(readme);
    if (!m.find()) {
      throw new AssertionError("README has no example");
    }
    // The example is a main method's body after its imports: put it in one, and run
    // it with Java's source launcher on this module's classpath.
    String[] parts = m.group(1).split("\n\n", 2);
    String source = parts[0] + "\n\npublic class Example {\n  public static void main(String[] args) throws Exception {\n"
        + parts[1] + "  }\n}\n";
    try (var server = CacheeServer.start()) {
      Path file = server.dir.resolve("Example.java");
      Files.writeString(file, source);
      ProcessBuilder pb = new ProcessBuilder(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-cp", System.getProperty("java.class.path"), file.toString());
      pb.environment().keySet().removeIf(k -> k.startsWith("CACHE_") || k.startsWith("CACHEE_"));
      pb.environment().put("CACHEE_SOCKET", server.sock.toString());
      pb.redirectErrorStream(true);
      String out = "";
      // A fresh JVM's first call loads grpc-java and Netty and connects within the 1 s
      // default deadline; on a loaded machine that can run out. Run it again then, at
      // most twice: a broken example fails every time.
      for (int run = 0; run < 3; run++) {
        Process p = pb.start();
        out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor(60, TimeUnit.SECONDS);
        if (p.exitValue() == 0 || !out.contains("the client's default deadline")) {
          assertEquals(0, p.exitValue(), out);
          break;
        }
      }
      assertEquals("{\"name\":\"Ada\"}\n", out);
    }
  }
}
