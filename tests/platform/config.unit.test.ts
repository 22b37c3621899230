import { describe, expect, it } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config.ts";

/** configError runs loadConfig and returns the ConfigError it must throw. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("loadConfig accepted an invalid environment");
}

const keys = (err: ConfigError) => [...new Set(err.issues.map((i) => i.key))].sort();

const PRODUCTION = {
  NODE_ENV: "production",
  DATABASE_URL: "postgres://app@db.internal:5432/app",
  JWT_SECRET: "a-real-production-secret-of-at-least-32-chars",
  ADMIN_PASSWORD: "a-real-admin-password",
  METRICS_TOKEN: "a-real-scrape-token",
};

describe("loadConfig", () => {
  it("has a default for every setting, so an empty environment loads", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      NODE_ENV: "development",
      PORT: 3000,
      HOST: "0.0.0.0",
      LOG_LEVEL: "info",
      DATABASE_POOL_MAX: 10,
      JWT_TTL_SECONDS: 3600,
      ADMIN_USERNAME: "admin",
      SECRETS_FILE: ".data/secrets.json",
      ROLES: ["api", "worker"],
      CORS_ORIGINS: [],
      BODY_LIMIT_BYTES: 1024 * 1024,
      RATE_LIMIT_MAX: 300,
      RATE_LIMIT_WINDOW_SECONDS: 60,
      IDEMPOTENCY_TTL_SECONDS: 86400,
      METRICS_ENABLED: true,
    });
    expect(Object.values(config).every((v) => v !== undefined)).toBe(true);
    // Only the settings that switch a feature on by being present are left unset, and the
    // secrets, which have no default at all (resolveSecrets generates them outside production).
    for (const optional of [
      "ADMIN_PASSWORD",
      "AWS_ENDPOINT_URL",
      "DATABASE_URL",
      "JWT_SECRET",
      "EVENTBRIDGE_BUS_NAME",
      "KINESIS_STREAM_NAME",
      "METRICS_TOKEN",
      "MODULES",
      "REDIS_URL",
    ] as const) {
      expect(config[optional]).toBeUndefined();
    }
  });

  it("treats an empty string as unset and falls back to the default", () => {
    expect(loadConfig({ PORT: "", JWT_SECRET: "" })).toMatchObject({ PORT: 3000 });
    expect(loadConfig({ JWT_SECRET: "" }).JWT_SECRET).toBeUndefined();
  });

  it("parses numbers, lists and booleans from strings", () => {
    const config = loadConfig({ PORT: "8080", ROLES: "api", CORS_ORIGINS: "https://a.example, https://b.example", METRICS_ENABLED: "false" });
    expect(config).toMatchObject({ PORT: 8080, ROLES: ["api"], CORS_ORIGINS: ["https://a.example", "https://b.example"], METRICS_ENABLED: false });
  });

  it("names every offending variable in one ConfigError", () => {
    const err = configError({ PORT: "abc", JWT_SECRET: "short", RATE_LIMIT_MAX: "0", ROLES: "api,cron", REDIS_URL: "http://cache:6379" });
    expect(keys(err)).toEqual(["JWT_SECRET", "PORT", "RATE_LIMIT_MAX", "REDIS_URL", "ROLES"]);
    for (const key of keys(err)) expect(err.message).toContain(key);
    expect(err.message).toContain("at least 32 characters");
  });

  it("rejects a port out of range and a non-postgres database URL", () => {
    expect(keys(configError({ PORT: "70000", DATABASE_URL: "mysql://db/app" }))).toEqual(["DATABASE_URL", "PORT"]);
  });

  it("refuses missing secrets and a missing DATABASE_URL in production, naming each", () => {
    const err = configError({ NODE_ENV: "production" });
    expect(keys(err)).toEqual(["ADMIN_PASSWORD", "DATABASE_URL", "JWT_SECRET", "METRICS_TOKEN"]);
    for (const key of ["ADMIN_PASSWORD", "DATABASE_URL", "JWT_SECRET", "METRICS_TOKEN"]) expect(err.message).toContain(key);
  });

  it("refuses production without secrets even when everything else is set", () => {
    const err = configError({ ...PRODUCTION, JWT_SECRET: undefined, ADMIN_PASSWORD: undefined });
    expect(keys(err)).toEqual(["ADMIN_PASSWORD", "JWT_SECRET"]);
    expect(err.message).toContain("required in production");
  });

  it("reports production rules together with malformed values", () => {
    const err = configError({ NODE_ENV: "production", PORT: "abc", JWT_SECRET: "short" });
    expect(keys(err)).toEqual(["ADMIN_PASSWORD", "DATABASE_URL", "JWT_SECRET", "METRICS_TOKEN", "PORT"]);
  });

  it("needs METRICS_TOKEN in production only while metrics are on, and refuses a short one", () => {
    expect(keys(configError({ ...PRODUCTION, METRICS_TOKEN: undefined }))).toEqual(["METRICS_TOKEN"]);
    expect(loadConfig({ ...PRODUCTION, METRICS_TOKEN: undefined, METRICS_ENABLED: "false" }).METRICS_ENABLED).toBe(false);
    expect(keys(configError({ METRICS_TOKEN: "short" }))).toEqual(["METRICS_TOKEN"]);
  });

  it("loads production with real values", () => {
    const config = loadConfig(PRODUCTION);
    expect(config).toMatchObject(PRODUCTION);
  });

  it("reads PAYMENT_TIMEOUT as seconds or with a unit, 30 s by default", () => {
    expect(loadConfig({}).PAYMENT_TIMEOUT).toBe(30_000);
    expect(
      [
        loadConfig({ PAYMENT_TIMEOUT: "45" }),
        loadConfig({ PAYMENT_TIMEOUT: "0.5" }),
        loadConfig({ PAYMENT_TIMEOUT: "250ms" }),
        loadConfig({ PAYMENT_TIMEOUT: "2m" }),
      ].map((c) => c.PAYMENT_TIMEOUT),
    ).toEqual([45_000, 500, 250, 120_000]);
    for (const bad of ["soon", "0", "-1", "30h", "2d"]) expect(keys(configError({ PAYMENT_TIMEOUT: bad }))).toEqual(["PAYMENT_TIMEOUT"]);
  });

  it("reads ANALYTICS_FEATURES_LINGER as a duration that may be 0, 5 s by default", () => {
    expect(loadConfig({}).ANALYTICS_FEATURES_LINGER).toBe(5000);
    expect(["0", "250ms", "10s"].map((v) => loadConfig({ ANALYTICS_FEATURES_LINGER: v }).ANALYTICS_FEATURES_LINGER)).toEqual([0, 250, 10_000]);
    for (const bad of ["-1", "later"]) expect(keys(configError({ ANALYTICS_FEATURES_LINGER: bad }))).toEqual(["ANALYTICS_FEATURES_LINGER"]);
  });

  it("reads ANALYTICS_SESSIONS_LINGER as a duration that may be 0 (no linger), 1 s by default", () => {
    expect(loadConfig({}).ANALYTICS_SESSIONS_LINGER).toBe(1000);
    expect(["0", "0ms", "250ms", "2"].map((v) => loadConfig({ ANALYTICS_SESSIONS_LINGER: v }).ANALYTICS_SESSIONS_LINGER)).toEqual([0, 0, 250, 2000]);
    for (const bad of ["-1", "soon", "2d"]) expect(keys(configError({ ANALYTICS_SESSIONS_LINGER: bad }))).toEqual(["ANALYTICS_SESSIONS_LINGER"]);
  });
});
