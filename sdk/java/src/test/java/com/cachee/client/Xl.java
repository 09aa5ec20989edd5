package com.cachee.client;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * The Java leg of sdk/crosslang: {@code Xl set KEY HEX} stores a value, {@code Xl get
 * KEY...} prints each value in hex ("-" when missing). The address comes from the
 * environment, as an application's would.
 */
public final class Xl {
  public static void main(String[] args) {
    HexFormat hex = HexFormat.of();
    // A fresh JVM per command: its first call loads grpc-java and connects, which on a
    // loaded machine can outlast the 1 s default deadline.
    try (CacheeClient c = CacheeClient.builder().timeout(java.time.Duration.ofSeconds(10)).build()) {
      if (args[0].equals("set")) {
        c.set(args[1].getBytes(StandardCharsets.UTF_8), hex.parseHex(args[2]));
      } else if (args[0].equals("get")) {
        List<byte[]> keys = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
          keys.add(args[i].getBytes(StandardCharsets.UTF_8));
        }
        for (Optional<byte[]> v : c.getMany(keys)) {
          System.out.println(v.map(hex::formatHex).orElse("-"));
        }
      } else {
        throw new IllegalArgumentException("usage: Xl set KEY HEX | get KEY...");
      }
    }
  }
}
