import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import type pg from "pg";

/** The login role Reef creates for itself; a member of the `reef_app` group role. */
export const APP_LOGIN_ROLE = "reef_app_user";
const ROLE_LOCK = 7_420_002;

/**
 * A SCRAM-SHA-256 verifier for `password`, so the plaintext never reaches the
 * server (nor its statement log) when the role's password is set.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/**
 * Creates (or re-keys) the application's login role and lets it connect.
 * Runs as the database owner; needs CREATEROLE on an external server.
 */
export async function ensureAppLogin(owner: pg.ClientBase, password: string, database: string): Promise<void> {
  const ident = owner.escapeIdentifier.bind(owner);
  await owner.query("begin");
  try {
    await owner.query("select pg_advisory_xact_lock($1)", [ROLE_LOCK]);
    const found = await owner.query("select 1 from pg_roles where rolname = $1", [APP_LOGIN_ROLE]);
    if (found.rowCount === 0) {
      await owner.query(`create role ${ident(APP_LOGIN_ROLE)} login nosuperuser nobypassrls nocreatedb nocreaterole`);
    }
    await owner.query(
      `alter role ${ident(APP_LOGIN_ROLE)} with login password ${owner.escapeLiteral(scramVerifier(password))}`,
    );
    await owner.query(`grant reef_app to ${ident(APP_LOGIN_ROLE)}`);
    await owner.query(`grant connect on database ${ident(database)} to reef_app`);
    await owner.query("commit");
  } catch (err) {
    await owner.query("rollback").catch(() => {});
    const code = (err as { code?: string }).code;
    if (code === "42501") {
      throw new Error(
        `the DATABASE_URL user may not create roles (${(err as Error).message}). Grant it CREATEROLE, or create a login role that is a member of reef_app and set REEF_DATABASE_APP_URL.`,
        { cause: err },
      );
    }
    throw err;
  }
}
