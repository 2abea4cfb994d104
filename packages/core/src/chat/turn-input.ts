import type { schema } from "@reef/db";
import type { Owner } from "./turn-runner.ts";

type MessageRow = typeof schema.chatMessages.$inferSelect;

// What a turn hands the gateway besides the person's words: the gateway session
// it runs in, and the conversation re-told after an edit.

/**
 * The gateway session a Reef session maps to, in OpenClaw's `agent:<agentId>:<rest>`
 * form: the prefix selects the agent (a gateway with several agents and no
 * default refuses a key that does not), and the rest names the workspace, the
 * owner and the session, so two members (or two sessions) never share a gateway
 * session even if ids were guessed.
 */
export function gatewaySessionKey(workspaceId: string, agentId: string, owner: Owner, sessionId: string): string {
  const who = owner.userId ? `user-${owner.userId}` : `key-${owner.apiKeyId}`;
  return `agent:${agentId}:reef-${workspaceId}-${who}-session-${sessionId}`;
}

/** How much of the kept conversation an edited one re-tells the agent (the most recent part). */
const MAX_RETOLD_CHARS = 60_000;

/** The person's text, preceded by the conversation kept before an edit (the gateway forgot it). */
export function withEarlierTurns(kept: MessageRow[], text: string): string {
  const said = kept.filter((m) => m.content.trim() !== "");
  if (said.length === 0) return text;
  let history = said.map((m) => `${m.role === "user" ? "User" : "Assistant"}: ${m.content}`).join("\n\n");
  if (history.length > MAX_RETOLD_CHARS) history = `…${history.slice(-MAX_RETOLD_CHARS)}`;
  return `[This conversation was edited, so you are told again what was said before the edit:]\n\n${history}\n\n[The person's new message:]\n\n${text}`;
}
