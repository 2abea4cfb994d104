import type { RunDetail } from "@reef/contracts";
import { schema, type Tx } from "@reef/db";
import { and, eq } from "drizzle-orm";
import { createTranscriptSealer } from "../chat/transcript-sealing.ts";
import { parseTrace } from "../chat/turn-trace.ts";
import type { Vault } from "../vault/vault-service.ts";
import { type RunRow, runPromptRecordId, type ScheduleRow } from "./schedule-types.ts";
import { toRunView } from "./schedule-view.ts";

const { chatMessages } = schema;

/**
 * One run with its output, opened from the answer stored in the creator's
 * schedule session (sealed like every transcript). `mayRead`: the caller
 * created the schedule, or it shares its output; otherwise only the run's
 * facts come back.
 */
export async function toRunDetail(
  tx: Tx,
  vault: Vault,
  schedule: ScheduleRow,
  run: RunRow,
  mayRead: boolean,
): Promise<RunDetail> {
  const view = toRunView(run);
  if (!mayRead) return { ...view, outputHidden: true, output: null };
  const prompt = run.promptSealed
    ? await vault.open(tx, run.workspaceId, runPromptRecordId(run.id), run.promptSealed)
    : schedule.prompt;
  let content = "";
  let trace: unknown = null;
  if (run.messageId !== null && run.sessionId !== null) {
    const [message] = await tx
      .select()
      .from(chatMessages)
      .where(
        and(
          eq(chatMessages.id, run.messageId),
          eq(chatMessages.sessionId, run.sessionId),
          eq(chatMessages.workspaceId, run.workspaceId),
        ),
      );
    if (message) {
      const sealer = createTranscriptSealer(vault);
      content = await sealer.openMessage(tx, message);
      const steps = parseTrace(await sealer.openTrace(tx, message));
      trace = steps.length ? steps : null;
    }
  }
  return { ...view, outputHidden: false, output: { prompt, content, trace } };
}
