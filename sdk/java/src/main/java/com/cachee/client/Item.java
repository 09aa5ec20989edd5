package com.cachee.client;

import java.nio.charset.StandardCharsets;

/** One write of {@link CacheeClient#setMany}. */
public record Item(byte[] key, byte[] value, SetOptions options) {
  public Item(byte[] key, byte[] value) {
    this(key, value, SetOptions.NONE);
  }

  public static Item of(String key, String value) {
    return new Item(key.getBytes(StandardCharsets.UTF_8), value.getBytes(StandardCharsets.UTF_8));
  }

  public static Item of(String key, String value, SetOptions options) {
    return new Item(key.getBytes(StandardCharsets.UTF_8), value.getBytes(StandardCharsets.UTF_8), options);
  }
}
