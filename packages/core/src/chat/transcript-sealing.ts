import type { Tx } from "@reef/db";
import type { Vault } from "../vault/vault-service.ts";

/**
 * Conversations sealed at rest: message contents, answers' execution traces and
 * session titles are sealed with the workspace's data key (the vault) before
 * they reach Postgres, so a database dump or backup holds no transcript text.
 * Each value is bound to where it belongs (the vault's additional data), so a
 * ciphertext copied to another message, session or workspace does not open.
 *
 * `sealed` / `title_sealed` say which rows hold sealed values: rows written
 * before sealing existed read back as they are until the upgrade step
 * (`seal-transcripts-upgrade.ts`) seals them. Rows written by this code always
 * say `sealed`; an empty value has nothing to hide and is stored as `""`, which
 * no sealed value ever is.
 */

/**
 * Binds a message's content to its session and its own id: it does not open if
 * moved to another message, even one of the same session.
 */
export const messageRecordId = (sessionId: string, messageId: number) => `chat:${sessionId}:${messageId}`;

/**
 * Binds an answer's execution trace to its message, under its own purpose: a
 * trace is never read as a message's content, nor the other way round.
 */
export const traceRecordId = (sessionId: string, messageId: number) => `chat-trace:${sessionId}:${messageId}`;

/** Binds a session's title to the session. */
export const titleRecordId = (sessionId: string) => `chat-title:${sessionId}`;

/** A stored message as far as sealing is concerned. */
export interface StoredMessage {
  id: number;
  workspaceId: string;
  sessionId: string;
  content: string;
  sealed: boolean;
}

/** A stored session as far as sealing is concerned. */
export interface StoredSession {
  id: string;
  workspaceId: string;
  title: string;
  titleSealed: boolean;
}

export interface TranscriptSealer {
  /** The stored form of a message's content. Call in a transaction scoped to `workspaceId`. */
  sealMessage(tx: Tx, workspaceId: string, sessionId: string, messageId: number, content: string): Promise<string>;
  /** A stored message's content in clear; only for callers already allowed to read the session. */
  openMessage(tx: Tx, row: StoredMessage): Promise<string>;
  /** The stored form of a session's title. */
  sealTitle(tx: Tx, workspaceId: string, sessionId: string, title: string): Promise<string>;
  /** A stored session's title in clear; only for its owner. */
  openTitle(tx: Tx, row: StoredSession): Promise<string>;
  /**
   * The stored form of an answer's trace (its JSON): null when no tool ran.
   * Traces are always written sealed (the column is newer than sealing).
   */
  sealTrace(
    tx: Tx,
    workspaceId: string,
    sessionId: string,
    messageId: number,
    json: string | null,
  ): Promise<string | null>;
  /** A stored trace's JSON in clear, or null; only for callers already allowed to read the session. */
  openTrace(tx: Tx, row: StoredMessage & { trace: string | null }): Promise<string | null>;
}

export function createTranscriptSealer(vault: Vault): TranscriptSealer {
  return {
    sealMessage: (tx, workspaceId, sessionId, messageId, content) =>
      content === ""
        ? Promise.resolve("")
        : vault.seal(tx, workspaceId, messageRecordId(sessionId, messageId), content),
    openMessage: (tx, row) =>
      row.sealed && row.content !== ""
        ? vault.open(tx, row.workspaceId, messageRecordId(row.sessionId, row.id), row.content)
        : Promise.resolve(row.content),
    sealTitle: (tx, workspaceId, sessionId, title) =>
      title === "" ? Promise.resolve("") : vault.seal(tx, workspaceId, titleRecordId(sessionId), title),
    openTitle: (tx, row) =>
      row.titleSealed && row.title !== ""
        ? vault.open(tx, row.workspaceId, titleRecordId(row.id), row.title)
        : Promise.resolve(row.title),
    sealTrace: (tx, workspaceId, sessionId, messageId, json) =>
      json === null ? Promise.resolve(null) : vault.seal(tx, workspaceId, traceRecordId(sessionId, messageId), json),
    openTrace: (tx, row) =>
      row.trace === null
        ? Promise.resolve(null)
        : vault.open(tx, row.workspaceId, traceRecordId(row.sessionId, row.id), row.trace),
  };
}
