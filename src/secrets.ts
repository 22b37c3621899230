import { chmod, mkdir, open, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";
import type { Config } from "./config.ts";

/**
 * Secrets outside production. No secret is written in the source: when JWT_SECRET or
 * ADMIN_PASSWORD is not configured, one is generated on the first start and kept in
 * SECRETS_FILE (`.data/secrets.json`, mode 0600), so tokens and the admin
 * password survive a restart. A generated admin password is printed once, in the start-up log
 * of the start that made it (as Jenkins or Grafana do). Production never gets here without
 * both: loadConfig refuses to start.
 */

/** ResolvedConfig is a Config whose secrets are known. */
export type ResolvedConfig = Config & { JWT_SECRET: string; ADMIN_PASSWORD: string };

interface SecretsFile {
  jwtSecret?: string;
  adminPassword?: string;
}

const randomText = (bytes: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("base64url");

async function readSecrets(file: string): Promise<SecretsFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  // Someone widened it (a copy, an editor): it holds secrets, so it is narrowed again.
  await chmod(file, 0o600);
  const parsed = JSON.parse(text) as SecretsFile;
  if (typeof parsed !== "object" || parsed === null) throw new Error(`${file} is not a JSON object; delete it to generate new secrets`);
  return parsed;
}

async function writeSecrets(file: string, secrets: SecretsFile, replace: boolean): Promise<boolean> {
  // The directory keeps the default mode: as root, the embedded Postgres runs as another user
  // that must reach `.data/postgres` beside this file. The file itself is 0600.
  await mkdir(dirname(file), { recursive: true });
  // Exclusive create: of two processes starting at once on one directory, one writes and the
  // other reads what it wrote.
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, replace ? "w" : "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    await handle.writeFile(`${JSON.stringify(secrets, null, 2)}\n`);
    await handle.chmod(0o600);
  } finally {
    await handle.close();
  }
  return true;
}

/**
 * resolveSecrets returns the config with JWT_SECRET and ADMIN_PASSWORD filled in: the
 * configured values when set, else those kept in SECRETS_FILE, else new random ones (written
 * there first). Configured values are never written to the file.
 *
 * @example const resolved = await resolveSecrets(loadConfig(), log);
 */
export async function resolveSecrets(config: Config, log: Logger): Promise<ResolvedConfig> {
  if (config.JWT_SECRET !== undefined && config.ADMIN_PASSWORD !== undefined) return config as ResolvedConfig;
  if (config.NODE_ENV === "production") throw new Error("JWT_SECRET and ADMIN_PASSWORD are required in production");
  const file = config.SECRETS_FILE;
  for (let attempt = 0; ; attempt++) {
    const kept = (await readSecrets(file)) ?? {};
    const missing = {
      jwtSecret: config.JWT_SECRET === undefined && typeof kept.jwtSecret !== "string",
      adminPassword: config.ADMIN_PASSWORD === undefined && typeof kept.adminPassword !== "string",
    };
    if (missing.jwtSecret || missing.adminPassword) {
      const next: SecretsFile = { ...kept };
      if (missing.jwtSecret) next.jwtSecret = randomText(48);
      if (missing.adminPassword) next.adminPassword = randomText(18);
      const existed = Object.keys(kept).length > 0;
      if (!(await writeSecrets(file, next, existed))) {
        if (attempt < 3) continue;
        throw new Error(`could not create ${file}`);
      }
      if (missing.jwtSecret) log.warn({ file }, "JWT_SECRET is not set: generated one and kept it in the secrets file (tokens survive restarts)");
      if (missing.adminPassword)
        log.warn(
          { file, username: config.ADMIN_USERNAME },
          `ADMIN_PASSWORD is not set: generated the admin password "${next.adminPassword}" for "${config.ADMIN_USERNAME}" and kept it in the secrets file; it is printed only this once`,
        );
      return { ...config, JWT_SECRET: config.JWT_SECRET ?? next.jwtSecret!, ADMIN_PASSWORD: config.ADMIN_PASSWORD ?? next.adminPassword! };
    }
    if (config.JWT_SECRET === undefined || config.ADMIN_PASSWORD === undefined) log.info({ file }, "using the secrets kept in the secrets file");
    return { ...config, JWT_SECRET: config.JWT_SECRET ?? kept.jwtSecret!, ADMIN_PASSWORD: config.ADMIN_PASSWORD ?? kept.adminPassword! };
  }
}
