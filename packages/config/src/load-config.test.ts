import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, describeConfig, loadConfig, parseConfig } from "./load-config.ts";

const tempDir = () => mkdtemp(join(tmpdir(), "reef-config-"));
const KEY = Buffer.alloc(32, 7).toString("base64");

describe("parseConfig", () => {
  it("applies the documented defaults", async () => {
    const config = await parseConfig({ env: {} });
    expect(config).toMatchObject({
      port: 7420,
      host: "127.0.0.1",
      dataDir: "./.reef",
      logLevel: "info",
      embeddedPostgresPort: 0,
    });
    expect(config.databaseUrl).toBeUndefined();
  });

  it("reads REEF_ variables and DATABASE_URL", async () => {
    const config = await parseConfig({
      env: {
        REEF_PORT: "8080",
        REEF_HOST: "0.0.0.0",
        DATABASE_URL: "postgres://u:p@db:5432/reef",
        REEF_LOG_LEVEL: "debug",
      },
    });
    expect(config).toMatchObject({
      port: 8080,
      host: "0.0.0.0",
      databaseUrl: "postgres://u:p@db:5432/reef",
      logLevel: "debug",
    });
  });

  it("names the variable and the reason when a value is invalid", async () => {
    await expect(parseConfig({ env: { REEF_PORT: "eighty" } })).rejects.toThrow(/REEF_PORT: .*number/i);
    await expect(parseConfig({ env: { REEF_PORT: "70000" } })).rejects.toThrow(/REEF_PORT/);
    await expect(parseConfig({ env: { DATABASE_URL: "mysql://x@y/z" } })).rejects.toThrow(
      /DATABASE_URL: must be a postgres/,
    );
    await expect(parseConfig({ env: { REEF_LOG_LEVEL: "loud" } })).rejects.toThrow(/REEF_LOG_LEVEL/);
    await expect(parseConfig({ env: { REEF_SECRET_KEY: "short" } })).rejects.toThrow(
      /REEF_SECRET_KEY: must be 32 bytes/,
    );
    await expect(parseConfig({ env: { REEF_PORT: "x" } })).rejects.toBeInstanceOf(ConfigError);
  });

  it("takes a JSON config file, with the environment winning", async () => {
    const dir = await tempDir();
    const file = join(dir, "reef.json");
    await writeFile(file, JSON.stringify({ port: 9000, host: "::1", logLevel: "warn" }));
    const config = await parseConfig({ env: { REEF_PORT: "9100" }, file });
    expect(config).toMatchObject({ port: 9100, host: "::1", logLevel: "warn" });
  });

  it("rejects unknown keys and bad values in the file, naming the file", async () => {
    const dir = await tempDir();
    const file = join(dir, "reef.json");
    await writeFile(file, JSON.stringify({ prot: 1 }));
    await expect(parseConfig({ env: {}, file })).rejects.toThrow(/unknown setting\(s\) in .*reef.json: prot/);
    await writeFile(file, JSON.stringify({ port: -1 }));
    await expect(parseConfig({ env: {}, file })).rejects.toThrow(/port \(in .*reef.json\)/);
    await writeFile(file, "{nope");
    await expect(parseConfig({ env: {}, file })).rejects.toThrow(/cannot read config file/);
  });
});

describe("loadConfig secret key", () => {
  it("generates a key into the data dir with mode 0600 and reuses it", async () => {
    const dir = await tempDir();
    const first = await loadConfig({ env: { REEF_DATA_DIR: dir } });
    expect(first.secretKeySource).toBe("generated");
    expect(first.secretKey).toHaveLength(32);
    const info = await stat(join(dir, "secret.key"));
    expect(info.mode & 0o777).toBe(0o600);
    const second = await loadConfig({ env: { REEF_DATA_DIR: dir } });
    expect(second.secretKeySource).toBe("file");
    expect(second.secretKey.equals(first.secretKey)).toBe(true);
  });

  it("prefers REEF_SECRET_KEY and accepts hex", async () => {
    const dir = await tempDir();
    const fromEnv = await loadConfig({ env: { REEF_DATA_DIR: dir, REEF_SECRET_KEY: KEY } });
    expect(fromEnv.secretKeySource).toBe("env");
    const hex = await loadConfig({ env: { REEF_DATA_DIR: dir, REEF_SECRET_KEY: "ab".repeat(32) } });
    expect(hex.secretKey).toEqual(Buffer.alloc(32, 0xab));
    await expect(stat(join(dir, "secret.key"))).rejects.toThrow();
  });

  it("refuses a corrupted key file instead of replacing it", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "secret.key"), "not-a-key\n");
    await expect(loadConfig({ env: { REEF_DATA_DIR: dir } })).rejects.toThrow(/secret.key: must be 32 bytes/);
    expect(await readFile(join(dir, "secret.key"), "utf8")).toBe("not-a-key\n");
  });

  it("never shows secrets in its description", async () => {
    const dir = await tempDir();
    const old = Buffer.alloc(32, 9);
    const config = await loadConfig({
      env: {
        REEF_DATA_DIR: dir,
        REEF_SECRET_KEY: KEY,
        REEF_SECRET_KEY_PREVIOUS: old.toString("base64"),
        DATABASE_URL: "postgres://reef:hunter2@db/reef",
        REEF_METRICS_TOKEN: "metrics-scrape-secret-0123456789",
      },
    });
    const description = describeConfig(config);
    const text = JSON.stringify(description);
    expect(text).not.toContain("hunter2");
    expect(text).not.toContain("metrics-scrape-secret");
    expect(description.metricsToken).toBe("set, masked");
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(old.toString("base64"));
    // Bytes of a Buffer, as JSON would write them.
    expect(text).not.toContain("9,9,9");
    expect(text).toContain("postgres://reef:***@db/reef");
    expect(description.secretKeyPrevious).toBe("1 key(s), masked");
  });

  it("refuses a metrics token short enough to guess", async () => {
    const dir = await tempDir();
    await expect(loadConfig({ env: { REEF_DATA_DIR: dir, REEF_METRICS_TOKEN: "metrics" } })).rejects.toThrow(
      /REEF_METRICS_TOKEN.*24 characters/s,
    );
  });

  it("reads previous root keys for a rotation: comma-separated, base64 or hex, naming a bad one", async () => {
    const [a, b] = [Buffer.alloc(32, 1), Buffer.alloc(32, 2)];
    const dir = await tempDir();
    const config = await loadConfig({
      env: {
        REEF_DATA_DIR: dir,
        REEF_SECRET_KEY: KEY,
        REEF_SECRET_KEY_PREVIOUS: ` ${a.toString("base64")} , ${b.toString("hex")},`,
      },
    });
    expect(config.secretKeyPrevious).toEqual([a, b]);
    expect((await loadConfig({ env: { REEF_DATA_DIR: dir, REEF_SECRET_KEY: KEY } })).secretKeyPrevious).toBeUndefined();
    await expect(
      parseConfig({ env: { REEF_SECRET_KEY_PREVIOUS: `${a.toString("base64")},not-a-key` } }),
    ).rejects.toThrow(/REEF_SECRET_KEY_PREVIOUS: key 2: must be 32 bytes/);
    // In a file: a list, or the same comma-separated string.
    const file = join(dir, "reef.json");
    await writeFile(file, JSON.stringify({ secretKeyPrevious: [a.toString("base64"), b.toString("base64")] }));
    expect((await parseConfig({ env: {}, file })).secretKeyPrevious).toEqual([a, b]);
  });
});
