// Runs the real cachee binary for the tests: $CACHEE_BIN, or one built with go build.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../../../", import.meta.url)); // from dist/test/
const START_TIMEOUT_MS = 60_000;

let built: string | undefined;

function binary(): string {
  if (process.env.CACHEE_BIN) {
    return process.env.CACHEE_BIN;
  }
  if (!built) {
    const dir = mkdtempSync(join(tmpdir(), "cachee-bin"));
    process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
    built = join(dir, "cachee");
    execFileSync("go", ["build", "-o", built, "./cmd/cachee"], { cwd: REPO, stdio: "inherit" });
  }
  return built;
}

/** The test environment without the variables that would redirect a client or server. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CACHE_") && !k.startsWith("CACHEE_")));
}

/**
 * One cachee process on a socket in a fresh short directory (socket paths are limited
 * to 107 bytes), with free ports chosen by the kernel (--port=0) and read back from its
 * "serving" log line, and a private segment directory.
 */
export class Server {
  readonly dir: string;
  readonly sock: string;
  tcp = "";
  resp = false;
  private proc!: ChildProcess;
  private logs: string[] = [];

  private constructor(sock?: string) {
    this.dir = mkdtempSync(join(tmpdir(), "cachee-ts"));
    this.sock = sock ?? join(this.dir, "c.sock");
  }

  static async start(args: string[] = [], sock?: string): Promise<Server> {
    const s = new Server(sock);
    const shm = join(s.dir, "shm");
    mkdirSync(shm);
    s.proc = spawn(
      binary(),
      [`--socket=${s.sock}`, `--shm=${shm}`, "--port=0", "--http-port=0", "--metrics-port=0", "--max-memory=8mb", "--log-format=json", ...args],
      { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cachee did not start:\n${s.logs.join("\n")}`)), START_TIMEOUT_MS);
      s.proc.once("exit", (code) => reject(new Error(`cachee exited with ${code}:\n${s.logs.join("\n")}`)));
      for (const out of [s.proc.stdout!, s.proc.stderr!]) {
        createInterface({ input: out }).on("line", (line) => {
          s.logs.push(line);
          try {
            const rec = JSON.parse(line);
            if (rec.msg === "serving") {
              s.tcp = `127.0.0.1:${String(rec.addr).split(":").pop()}`;
              s.resp = Boolean(rec.resp);
              clearTimeout(timer);
              resolve();
            }
          } catch {
            // not a JSON log line
          }
        });
      }
    });
    return s;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGKILL");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
