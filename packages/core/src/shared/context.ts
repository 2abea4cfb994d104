import type { WorkspaceRole } from "@reef/db";

/** Who is acting. Services authorise against this, never against raw HTTP input. */
export type Actor =
  | {
      kind: "user";
      userId: string;
      platformRole: "super_admin" | "user";
      sessionId: string;
      /** The session was signed in with a second factor (or through an IdP): see `methodHasSecondFactor`. */
      secondFactor?: boolean;
    }
  | { kind: "api_key"; keyId: string; workspaceId: string; role: WorkspaceRole }
  | { kind: "system"; name: string }
  | { kind: "anonymous" };

/** Everything a service needs to know about the request it serves. */
export interface RequestContext {
  actor: Actor;
  ip?: string | undefined;
  userAgent?: string | undefined;
  requestId?: string | undefined;
}

export type UserActor = Extract<Actor, { kind: "user" }>;
