import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveServiceLayout } from "../src/service-layout.ts";

const asRoot = process.platform === "linux" && process.getuid?.() === 0;
const created: string[] = [];

afterAll(async () => {
  for (const dir of created) await rm(dir, { recursive: true, force: true });
});

/** A data dir inside a home only root may enter (mode 0700), like `/root/reef/.reef`. */
async function privateDataDir(): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), "reef-layout-home-"));
  created.push(home);
  await chmod(home, 0o700);
  const dataDir = join(home, "reef", ".reef");
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  return dataDir;
}

const external = { databaseUrl: "postgres://u:p@db/reef", runtimeDriver: "docker" as const };

describe.skipIf(!asRoot)("where a root Reef keeps its database and runtimes", () => {
  it("leaves them in a data dir their users can enter", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "reef-layout-open-"));
    created.push(dataDir);
    await chmod(dataDir, 0o755);
    const layout = await resolveServiceLayout({ dataDir, ...external });
    expect(layout).toEqual({ postgresDir: join(dataDir, "postgres"), runtimesDir: join(dataDir, "runtimes") });
  });

  it("moves a new install out of a private home, and keeps that choice", async () => {
    const dataDir = await privateDataDir();
    const layout = await resolveServiceLayout({ dataDir, ...external });
    expect(layout.serviceDir).toMatch(/^\/var\/lib\/reef\/reef-[0-9a-f]{8}$/);
    created.push(layout.serviceDir as string);
    expect(layout.postgresDir).toBe(join(layout.serviceDir as string, "postgres"));
    expect(layout.runtimesDir).toBe(join(layout.serviceDir as string, "runtimes"));
    expect((await readFile(join(dataDir, "service-dir"), "utf8")).trim()).toBe(layout.serviceDir);
    // Opening the home later must not strand the cluster in the service dir.
    await chmod(join(dataDir, "..", ".."), 0o755);
    expect((await resolveServiceLayout({ dataDir, ...external })).postgresDir).toBe(layout.postgresDir);
  });

  it("gives a data dir made again at the same path a fresh service dir, leaving the earlier cluster alone", async () => {
    const dataDir = await privateDataDir();
    const first = await resolveServiceLayout({ dataDir, ...external });
    created.push(first.serviceDir as string);
    await mkdir(join(first.postgresDir, "data"), { recursive: true });
    await writeFile(join(first.postgresDir, "data", "PG_VERSION"), "18\n");
    // The clone deleted and made again: a new data dir (no pointer, a new key) at the same path.
    await rm(dataDir, { recursive: true });
    await mkdir(dataDir, { recursive: true, mode: 0o755 });
    const second = await resolveServiceLayout({ dataDir, ...external });
    created.push(second.serviceDir as string);
    expect(second.serviceDir).toMatch(new RegExp(`^${first.serviceDir}-[0-9a-f]{8}$`));
    expect(second.warning).toContain(`earlier data dir at this path is in ${first.serviceDir}`);
    expect(await readFile(join(first.postgresDir, "data", "PG_VERSION"), "utf8")).toBe("18\n");
    expect((await readFile(join(dataDir, "service-dir"), "utf8")).trim()).toBe(second.serviceDir);
  });

  it("never moves a cluster that already lives in the data dir", async () => {
    const dataDir = await privateDataDir();
    await mkdir(join(dataDir, "postgres", "data"), { recursive: true });
    await writeFile(join(dataDir, "postgres", "data", "PG_VERSION"), "18\n");
    const layout = await resolveServiceLayout({ dataDir, ...external });
    expect(layout.postgresDir).toBe(join(dataDir, "postgres"));
    expect(layout.serviceDir).toBeUndefined();
  });

  it("uses REEF_SERVICE_DIR when set, warning about a cluster it leaves behind", async () => {
    const dataDir = await privateDataDir();
    await mkdir(join(dataDir, "postgres", "data"), { recursive: true });
    await writeFile(join(dataDir, "postgres", "data", "PG_VERSION"), "18\n");
    const serviceDir = await mkdtemp(join(tmpdir(), "reef-layout-service-"));
    created.push(serviceDir);
    const layout = await resolveServiceLayout({ dataDir, serviceDir, ...external });
    expect(layout).toMatchObject({ postgresDir: join(serviceDir, "postgres"), serviceDirReason: "configured" });
    expect(layout.warning).toContain("REEF_SERVICE_DIR points elsewhere");
  });
});
