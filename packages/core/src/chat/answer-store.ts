import { type Db, type MessageStatus, schema, withScope } from "@reef/db";
import { and, eq } from "drizzle-orm";
import type { TranscriptSealer } from "./transcript-sealing.ts";

const { chatMessages, chatSessions } = schema;

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
 * transcript-sealing.ts). Every write is one statement on the answer's row
 * (the end of a turn that re-told an edited conversation also clears its session's flag).
 */
export function createAnswerStore(db: Db, sealer: TranscriptSealer) {
  return {
    /**
     * Tells every replica the answer is alive (only while it still streams).
     * @returns whether someone asked, on any replica, to stop it (read by the same statement).
     */
    async beat(a: AnswerRef): Promise<{ stopRequested: boolean }> {
      const rows = await withScope(db, { workspaceId: a.workspaceId }, (tx) =>
        tx
          .update(chatMessages)
          .set({ heartbeatAt: new Date() })
          .where(and(eq(chatMessages.id, a.messageId), eq(chatMessages.status, "streaming")))
          .returning({ abortRequestedAt: chatMessages.abortRequestedAt }),
      );
      return { stopRequested: rows[0]?.abortRequestedAt != null };
    },

    /**
     * Saves what the answer has so far, so a crash loses at most what came since.
     * @returns whether someone asked to stop it, like {@link beat}.
     */
    async flush(a: AnswerRef, so: AnswerSoFar): Promise<{ stopRequested: boolean }> {
      const rows = await withScope(db, { workspaceId: a.workspaceId }, async (tx) =>
        tx
          .update(chatMessages)
          .set({
            content: await sealer.sealMessage(tx, a.workspaceId, a.sessionId, a.messageId, so.content),
            sealed: true,
            trace: await sealer.sealTrace(tx, a.workspaceId, a.sessionId, a.messageId, so.trace),
            heartbeatAt: new Date(),
          })
          .where(eq(chatMessages.id, a.messageId))
          .returning({ abortRequestedAt: chatMessages.abortRequestedAt }),
      );
      return { stopRequested: rows[0]?.abortRequestedAt != null };
    },

    /** Stores the answer as it ended. */
    finish(
      a: AnswerRef,
      set: AnswerSoFar & {
        status: MessageStatus;
        error?: string;
        /** The error's stable code (one of CHAT_ERROR_CODES), kept so a reloaded page offers the right next step. */
        errorCode?: string;
        usage?: { promptTokens: number; completionTokens: number } | undefined;
        /** The turn re-told an edited conversation and completed: the gateway holds it all again. */
        retold?: boolean;
      },
    ): Promise<unknown> {
      return withScope(db, { workspaceId: a.workspaceId }, async (tx) => {
        if (set.retold && set.status === "complete") {
          await tx
            .update(chatSessions)
            .set({ gatewayRetellPending: false })
            .where(and(eq(chatSessions.id, a.sessionId), eq(chatSessions.gatewayRetellPending, true)));
        }
        await tx
          .update(chatMessages)
          .set({
            content: await sealer.sealMessage(tx, a.workspaceId, a.sessionId, a.messageId, set.content),
            sealed: true,
            status: set.status,
            error: set.error ?? null,
            errorCode: set.errorCode ?? null,
            // For display only: the LLM proxy counts every call, so counting here would count twice.
            promptTokens: set.usage?.promptTokens ?? null,
            completionTokens: set.usage?.completionTokens ?? null,
            trace: await sealer.sealTrace(tx, a.workspaceId, a.sessionId, a.messageId, set.trace),
            completedAt: new Date(),
          })
          .where(eq(chatMessages.id, a.messageId));
      });
    },
  };
}

export type AnswerStore = ReturnType<typeof createAnswerStore>;
