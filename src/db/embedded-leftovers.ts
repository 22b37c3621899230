/**
 * What an earlier run of the embedded Postgres can leave behind, and the port it needs: checked
 * before starting, so each case gets a message that says what to do instead of Postgres' own
 * error buried in its log.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";

/**
 * clearLeftovers handles a `postmaster.pid` left by a process that was killed (SIGKILL, OOM):
 * its Postgres child outlives it and keeps the data directory and port, so the next start fails.
 * A Postgres still running on this very directory whose app is gone is ours from that earlier
 * run: stop it. So is one whose parent is this very process (`bun --watch` restarts by exec,
 * keeping the pid, and nothing runs on the way out). One whose app still runs is in use: refuse,
 * never pull a database from under a live app. A pid file whose pid now belongs to something else
 * is stale: remove it, as Postgres' own error advises.
 */
export async function clearLeftovers(dataDir: string, log: (msg: string) => void): Promise<void> {
  const pidFile = `${dataDir}/postmaster.pid`;
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  const state = processState(pid);
  if (state === "gone") return; // Postgres itself ignores a dead pid.
  if (state === "zombie") {
    // Exited without cleaning up, and not reaped (see alive): Postgres would take it for running.
    log(`removing stale ${pidFile} (pid ${pid} has exited)`);
    rmSync(pidFile, { force: true });
    return;
  }
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    // No /proc (macOS): we cannot tell whose process it is, so let Postgres report it.
    return;
  }
  if (!/postgres/.test(cmdline) || !cmdline.includes(dataDir)) {
    log(`removing stale ${pidFile} (pid ${pid} is not Postgres)`);
    rmSync(pidFile, { force: true });
    return;
  }
  // A live app's Postgres is its child; an orphan has been re-parented to init (or a subreaper).
  const owner = parentOf(pid);
  if (owner && owner.pid !== process.pid && /(^|\/)bun( |$)/.test(owner.cmdline)) {
    throw new Error(
      `embedded Postgres in ${dataDir} is in use by another running process (pid ${owner.pid}: ${owner.cmdline.trim()}); stop it or set EMBEDDED_PG_DIR and EMBEDDED_PG_PORT to another directory and port`,
    );
  }
  log(`stopping embedded Postgres (pid ${pid}) left running on ${dataDir} by an earlier process`);
  process.kill(pid, "SIGINT"); // fast shutdown: aborts its sessions, keeps the data consistent
  const deadline = Date.now() + 15_000;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`embedded Postgres pid ${pid} on ${dataDir} did not stop; stop it (kill ${pid}) and retry`);
    await Bun.sleep(50);
  }
}

function parentOf(pid: number): { pid: number; cmdline: string } | undefined {
  try {
    // /proc/<pid>/stat is "pid (comm) state ppid ..."; comm may contain ") ", so cut at the last one.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!Number.isInteger(ppid) || ppid <= 1) return undefined;
    return { pid: ppid, cmdline: readFileSync(`/proc/${ppid}/cmdline`, "utf8").split("\0").join(" ") };
  } catch {
    return undefined;
  }
}

/**
 * alive tells whether a process runs (one we may not signal counts). A zombie does not: a
 * Postgres started before a `bun --watch` restart stays one once it exits, since the restarted
 * program (same pid) does not know to reap it.
 */
export function alive(pid: number): boolean {
  return processState(pid) === "running";
}

function processState(pid: number): "running" | "zombie" | "gone" {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM" ? "running" : "gone";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] === "Z" ? "zombie" : "running";
  } catch {
    return "running"; // no /proc (macOS): signalable means running
  }
}

/** assertPortFree fails fast with a useful message instead of Postgres' "could not bind" buried in its log. */
export async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((ok, fail) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) =>
      fail(
        err.code === "EADDRINUSE"
          ? new Error(`EMBEDDED_PG_PORT ${port} on 127.0.0.1 is already in use; stop what listens there or set EMBEDDED_PG_PORT to a free port`)
          : err,
      ),
    );
    probe.listen(port, "127.0.0.1", () => probe.close(() => ok()));
  });
}
