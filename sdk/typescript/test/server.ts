// Runs the real cachee binary for the tests: $CACHEE_BIN, or one built with go build;
// and a real redis-server where a test needs an L2 or a prewarm source.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../../../../", import.meta.url)); // from dist/test/
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until cond() holds, polling; fails after `timeoutMs` (generous: the machine is shared). */
export async function eventually(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(10);
  }
}

/**
 * One cachee process on a socket in a fresh short directory (socket paths are limited
 * to 107 bytes), with free ports chosen by the kernel (--port=0) and read back from its
 * "serving" log line, and a private segment directory.
 */
export class Server {
  readonly dir: string;
  readonly sock: string;
  readonly shm: string;
  tcp = "";
  resp = false;
  private proc!: ChildProcess;
  private logs: string[] = [];

  private constructor(
    private readonly args: string[],
    sock?: string,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), "cachee-ts"));
    this.sock = sock ?? join(this.dir, "c.sock");
    this.shm = join(this.dir, "shm");
    mkdirSync(this.shm);
  }

  static async start(args: string[] = [], sock?: string): Promise<Server> {
    const s = new Server(args, sock);
    await s.start();
    return s;
  }

  /** Starts the process (again, after kill(): on the same socket and segment directory), with extra flags besides the first start's. */
  async start(...extra: string[]): Promise<void> {
    this.proc = spawn(
      binary(),
      [`--socket=${this.sock}`, `--shm=${this.shm}`, "--port=0", "--http-port=0", "--metrics-port=0", "--max-memory=8mb", "--log-format=json", ...this.args, ...extra],
      { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
    );
    const proc = this.proc;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cachee did not start:\n${this.logs.join("\n")}`)), START_TIMEOUT_MS);
      const onExit = (code: number | null) => reject(new Error(`cachee exited with ${code}:\n${this.logs.join("\n")}`));
      proc.once("exit", onExit);
      for (const out of [proc.stdout!, proc.stderr!]) {
        createInterface({ input: out }).on("line", (line) => {
          this.logs.push(line);
          try {
            const rec = JSON.parse(line);
            if (rec.msg === "serving") {
              this.tcp = `127.0.0.1:${String(rec.addr).split(":").pop()}`;
              this.resp = Boolean(rec.resp);
              clearTimeout(timer);
              proc.off("exit", onExit);
              resolve();
            }
          } catch {
            // not a JSON log line
          }
        });
      }
    });
  }

  /** SIGKILL, as an OOM kill or a node failure would. */
  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGKILL");
      await exited;
    }
  }

  /** SIGSTOP, returning once the process is stopped (state T), so that nothing sent after this is answered until resume(). */
  async pause(): Promise<void> {
    this.proc.kill("SIGSTOP");
    const deadline = Date.now() + START_TIMEOUT_MS;
    // The state follows the command name in parentheses.
    while (readFileSync(`/proc/${this.proc.pid}/stat`, "utf8").split(")").pop()!.trim()[0] !== "T") {
      if (Date.now() > deadline) {
        throw new Error("cachee did not stop");
      }
      await sleep(1);
    }
  }

  resume(): void {
    this.proc.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    this.resume();
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A real redis-server on a free loopback port, for an L2 or a prewarm source. */
export class Redis {
  private constructor(
    readonly url: string,
    private readonly proc: ChildProcess,
    private readonly dir: string,
  ) {}

  static async start(): Promise<Redis> {
    const dir = mkdtempSync(join(tmpdir(), "cachee-redis"));
    for (let tries = 0; tries < 10; tries++) {
      const port = await new Promise<number>((resolve) => {
        const s = createServer().listen(0, "127.0.0.1", () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      });
      const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
        stdio: "ignore",
      });
      const deadline = Date.now() + 10_000;
      while (proc.exitCode === null && Date.now() < deadline) {
        const up = await new Promise<boolean>((resolve) => {
          const c = connect(port, "127.0.0.1", () => (c.end(), resolve(true))).on("error", () => resolve(false));
        });
        if (up) {
          return new Redis(`redis://127.0.0.1:${port}`, proc, dir);
        }
        await sleep(20);
      }
      proc.kill("SIGKILL");
    }
    throw new Error("redis-server did not start");
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGKILL");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
