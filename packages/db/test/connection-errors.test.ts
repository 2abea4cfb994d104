import { describe, expect, it } from "vitest";
import { isDatabaseUnavailable } from "../src/connection-errors.ts";

const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

describe("isDatabaseUnavailable", () => {
  it("knows a database that is down, going down, starting or cut off, also wrapped in a query error", () => {
    for (const err of [
      coded("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED"),
      coded("terminating connection due to administrator command", "57P01"),
      coded("the database system is shutting down", "57P03"),
      coded("connection failure", "08006"),
      new Error("Connection terminated unexpectedly"),
      new Error("timeout exceeded when trying to connect"),
      new Error("Failed query: select 1", { cause: coded("connect ECONNREFUSED", "ECONNREFUSED") }),
    ])
      expect(isDatabaseUnavailable(err), err.message).toBe(true);
  });

  it("leaves real bugs and data errors alone", () => {
    for (const err of [
      new Error("boom"),
      coded("duplicate key value violates unique constraint", "23505"),
      coded("relation does not exist", "42P01"),
      new Error("Failed query: insert", { cause: coded("null value in column", "23502") }),
      "ECONNREFUSED",
      undefined,
    ])
      expect(isDatabaseUnavailable(err), String(err)).toBe(false);
  });
});
