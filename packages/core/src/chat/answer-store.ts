import { type Db, type MessageStatus, schema, withScope } from "@reef/db";
import { and, eq } from "drizzle-orm";
import type { TranscriptSealer } from "./transcript-sealing.ts";

const { chatMessages } = schema;

/** Where an answer being written is: which message, of which session, in which workspace. */
export interface AnswerRef {
  workspaceId: string;
  sessionId: string;
  messageId: number;
}

/** What an answer has so far: its text, and its trace as JSON (null when no tool ran). */
export interface AnswerSoFar {
  content: string;
  trace: string | null;
}

/**
 * Saving an answer while it streams and when it ends, sealed (see
 * transcript-sealing.ts). Every write is one statement on the answer's row.
 */
export function createAnswerStore(db: Db, sealer: TranscriptSealer) {
  return {
    /** Tells every replica the answer is alive (only while it still streams). */
    beat(a: AnswerRef): Promise<unknown> {
      return withScope(db, { workspaceId: a.workspaceId }, (tx) =>
        tx
          .update(chatMessages)
          .set({ heartbeatAt: new Date() })
          .where(and(eq(chatMessages.id, a.messageId), eq(chatMessages.status, "streaming"))),
      );
    },

    /** Saves what the answer has so far, so a crash loses at most what came since. */
    flush(a: AnswerRef, so: AnswerSoFar): Promise<unknown> {
      return withScope(db, { workspaceId: a.workspaceId }, async (tx) =>
        tx
          .update(chatMessages)
          .set({
            content: await sealer.sealMessage(tx, a.workspaceId, a.sessionId, a.messageId, so.content),
            sealed: true,
            trace: await sealer.sealTrace(tx, a.workspaceId, a.sessionId, a.messageId, so.trace),
            heartbeatAt: new Date(),
          })
          .where(eq(chatMessages.id, a.messageId)),
      );
    },

    /** Stores the answer as it ended. */
    finish(
      a: AnswerRef,
      set: AnswerSoFar & {
        status: MessageStatus;
        error?: string;
        usage?: { promptTokens: number; completionTokens: number } | undefined;
      },
    ): Promise<unknown> {
      return withScope(db, { workspaceId: a.workspaceId }, async (tx) =>
        tx
          .update(chatMessages)
          .set({
            content: await sealer.sealMessage(tx, a.workspaceId, a.sessionId, a.messageId, set.content),
            sealed: true,
            status: set.status,
            error: set.error ?? null,
            // For display only: the LLM proxy counts every call, so counting here would count twice.
            promptTokens: set.usage?.promptTokens ?? null,
            completionTokens: set.usage?.completionTokens ?? null,
            trace: await sealer.sealTrace(tx, a.workspaceId, a.sessionId, a.messageId, set.trace),
            completedAt: new Date(),
          })
          .where(eq(chatMessages.id, a.messageId)),
      );
    },
  };
}

export type AnswerStore = ReturnType<typeof createAnswerStore>;
