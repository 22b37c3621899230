/**
 * Running the embedded Postgres as root (a container's usual user).
 *
 * Postgres refuses to run as root, so as root its processes run as an unprivileged `postgres`
 * user. That user must reach both the binaries and the data directory: every directory on the
 * way needs its search (x) permission. A clone under `/root` or in a `mktemp -d` folder (mode
 * 0700) grants neither, and initdb from `node_modules` fails with EACCES. Loosening the
 * permissions of someone's home directory is not ours to do, so instead:
 *
 * - the data directory stays where EMBEDDED_PG_DIR says when that user can reach its parent;
 *   otherwise it moves to `/var/lib/eventful-monolith/embedded-postgres/<hash of the path>/`
 *   (created root-owned, mode 0755), and the start-up log says where;
 * - the binaries are hard-linked (copied across file systems) from the platform package into
 *   a directory beside the data directory, mode 0755, so their path is reachable too.
 *
 * Reachability is tested by entering the directory as that user, exactly as Postgres will, so
 * ACLs and group membership count as the kernel counts them.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

/** RunAs is the unprivileged user the embedded Postgres runs as when the app runs as root. */
export interface RunAs {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** RELOCATED_BASE holds data directories the postgres user could not reach where configured. */
export const RELOCATED_BASE = "/var/lib/eventful-monolith/embedded-postgres";
const USER = "postgres";

/**
 * postgresUser finds the `postgres` user, creating it (as a system user without a home or a
 * login shell) when the system has none, as the embedded-postgres package does.
 */
export function postgresUser(log: (msg: string) => void): RunAs {
  const found = lookup();
  if (found) return found;
  log(`creating the system user "${USER}" for the embedded Postgres (Postgres refuses to run as root)`);
  const attempts = [
    // shadow-utils (Debian, Ubuntu, Fedora, ...)
    [
      ["groupadd", "--system", USER],
      ["useradd", "--system", "--gid", USER, "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", USER],
    ],
    // busybox (Alpine)
    [
      ["addgroup", "-S", USER],
      ["adduser", "-S", "-D", "-H", "-G", USER, USER],
    ],
  ];
  const errors: string[] = [];
  for (const steps of attempts) {
    for (const [cmd, ...args] of steps) {
      const r = spawnSync(cmd!, args, { encoding: "utf8" });
      // "already exists" from a half-done earlier attempt is fine; the lookup below decides.
      if (r.error || (r.status !== 0 && !/exists/i.test(r.stderr))) errors.push(`${cmd}: ${r.error?.message ?? r.stderr.trim()}`);
    }
    const created = lookup();
    if (created) return created;
  }
  throw new Error(
    `running as root, the embedded Postgres needs an unprivileged user "${USER}", and creating it failed (${errors.join("; ")}). Create it yourself (useradd --system ${USER}), run as a non-root user, or set DATABASE_URL to a Postgres server.`,
  );
}

function lookup(): RunAs | undefined {
  const id = (flag: string) => {
    const r = spawnSync("id", [flag, USER], { encoding: "utf8" });
    const n = Number.parseInt(r.stdout, 10);
    return r.status === 0 && Number.isInteger(n) ? n : undefined;
  };
  const uid = id("-u");
  const gid = id("-g");
  return uid === undefined || gid === undefined ? undefined : { name: USER, uid, gid };
}

/** canReach tells whether `user` can enter `dir` (search permission on it and every parent). */
export function canReach(dir: string, user: RunAs): boolean {
  const r = spawnSync("/bin/sh", ["-c", 'cd -- "$1"', "sh", dir], { uid: user.uid, gid: user.gid, stdio: "ignore" });
  return r.status === 0;
}

/**
 * reachableDataDir returns `dataDir` when `user` can reach its parent (creating the parent), and
 * otherwise a directory under RELOCATED_BASE named by a hash of `dataDir`, so each clone keeps its
 * own database across restarts.
 */
export function reachableDataDir(dataDir: string, user: RunAs, log: (msg: string) => void): string {
  const parent = dirname(dataDir);
  mkdirSync(parent, { recursive: true });
  if (canReach(parent, user)) return dataDir;
  const home = join(RELOCATED_BASE, createHash("sha256").update(dataDir).digest("hex").slice(0, 16));
  mkdirOpen(home);
  if (!canReach(home, user)) {
    throw new Error(
      `the embedded Postgres runs as the unprivileged user "${user.name}", which can reach neither ${parent} nor ${home}. Set EMBEDDED_PG_DIR to a directory it can enter (every parent needs o+x), or set DATABASE_URL to a Postgres server.`,
    );
  }
  const moved = join(home, basename(dataDir));
  log(
    `EMBEDDED_PG_DIR ${dataDir} is inside a directory the unprivileged user "${user.name}" cannot enter (Postgres refuses to run as root); the embedded database lives in ${moved} instead. Set EMBEDDED_PG_DIR to a directory that user can reach to choose the place.`,
  );
  return moved;
}

/** mkdirOpen creates `dir` and its missing parents as root-owned 0755 (the umask cannot narrow it). */
function mkdirOpen(dir: string): void {
  if (existsSync(dir)) return;
  mkdirOpen(dirname(dir));
  mkdirSync(dir);
  chmodSync(dir, 0o755);
}

/**
 * stageBinaries makes the platform package's `native/` tree (bin, lib, share) available under
 * `parent` as `.postgres-<version>/`, mode 0755, and returns its path. Files are hard links when
 * their mode already lets others read them (no copy, no extra disk), copies otherwise or across
 * file systems. Built in a temporary directory and renamed into place, so a concurrent start
 * never sees half a tree; a finished tree is reused.
 */
export function stageBinaries(nativeDir: string, version: string, parent: string): string {
  const target = join(parent, `.postgres-${version}`);
  const marker = join(target, ".staged");
  if (existsSync(marker)) return target;
  const temp = `${target}.tmp-${process.pid}`;
  rmSync(temp, { recursive: true, force: true });
  copyTree(nativeDir, temp);
  writeFileSync(join(temp, ".staged"), `${nativeDir}\n`);
  try {
    rmSync(target, { recursive: true, force: true }); // a tree without its marker is unfinished
    renameSync(temp, target);
  } catch (err) {
    rmSync(temp, { recursive: true, force: true });
    if (!existsSync(marker)) throw err; // not a concurrent start that finished first
  }
  return target;
}

function copyTree(from: string, to: string): void {
  mkdirSync(to);
  chmodSync(to, 0o755);
  for (const name of readdirSync(from)) {
    const src = join(from, name);
    const dst = join(to, name);
    const st = lstatSync(src);
    if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else if (st.isDirectory()) copyTree(src, dst);
    else if (st.isFile()) copyFile(src, dst, st.mode);
  }
}

function copyFile(src: string, dst: string, mode: number): void {
  const executable = (mode & 0o111) !== 0;
  const openToOthers = (mode & 0o004) !== 0 && (!executable || (mode & 0o001) !== 0);
  if (openToOthers) {
    try {
      linkSync(src, dst);
      return;
    } catch {
      // another file system, or hard links refused (fs.protected_hardlinks): copy instead
    }
  }
  copyFileSync(src, dst);
  chmodSync(dst, executable ? 0o755 : 0o644);
}
