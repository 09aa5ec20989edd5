package com.cachee.client;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Whether the sidecar holds its exclusive {@code flock} on a segment file, told without
 * native code. Java's {@code FileChannel.lock} takes POSIX ({@code fcntl}) record locks,
 * which on Linux neither see nor conflict with {@code flock} locks, so the Go reader's
 * probe (a non-blocking shared {@code flock}) has no Java equivalent. Instead this reads
 * {@code /proc/locks}, where the kernel lists every {@code flock} with the device and
 * inode of its file: a line {@code FLOCK ADVISORY WRITE <pid> <maj>:<min>:<ino>} for the
 * segment's inode is the writer's lock.
 *
 * <p>The kernel lists only the locks of processes that the reader's {@code /proc} can
 * see: a sidecar in another pid namespace (separate containers of a Kubernetes pod,
 * unless the pod shares its process namespace) is invisible there. So a missing line is
 * proof of no writer only once the lock has been seen for that file; until then the
 * reader relies on the other checks (state, generation, the sidecar's Stats reporting
 * the same generation, and the writer's clock within the lag bound), which notice a dead
 * writer within the lag bound (500 ms) rather than at the next check.
 */
final class WriterLock {
  enum Seen {
    /** A process holds the exclusive flock on the file. */
    HELD,
    /** No visible process holds it. */
    NOT_SEEN
  }

  private static final Path PROC_LOCKS = Path.of("/proc/locks");

  private WriterLock() {}

  /** Looks for the writer's lock on the file with this st_dev and st_ino. */
  static Seen probe(long dev, long ino) {
    byte[] text;
    try {
      text = Files.readAllBytes(PROC_LOCKS);
    } catch (IOException | SecurityException e) {
      return Seen.NOT_SEEN;
    }
    return find(new String(text, StandardCharsets.ISO_8859_1), dev, ino) ? Seen.HELD : Seen.NOT_SEEN;
  }

  /**
   * Whether {@code locks} (the text of /proc/locks) lists a granted exclusive flock on the
   * file. A waiter's line has "->" before its type and does not count.
   */
  static boolean find(String locks, long dev, long ino) {
    String id = devIno(dev, ino);
    for (String line : locks.split("\n")) {
      String[] f = line.trim().split("\\s+");
      // "1:" "FLOCK" "ADVISORY" "WRITE" pid "maj:min:ino" start end
      if (f.length >= 6 && f[1].equals("FLOCK") && f[3].equals("WRITE") && f[5].equals(id)) {
        return true;
      }
    }
    return false;
  }

  /** The file's id as /proc/locks prints it: "%02x:%02x:%lu" of major, minor, inode. */
  static String devIno(long dev, long ino) {
    // glibc's gnu_dev_major and gnu_dev_minor.
    long major = ((dev >>> 8) & 0xfff) | ((dev >>> 32) & 0xfffff000L);
    long minor = (dev & 0xff) | ((dev >>> 12) & 0xffffff00L);
    return String.format("%02x:%02x:%s", major, minor, Long.toUnsignedString(ino));
  }
}
