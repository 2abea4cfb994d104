import { schema, type Tx } from "@reef/db";
import { eq } from "drizzle-orm";
import { memberEmailsFor } from "../workspace/member-emails.ts";
import type { RunRow, ScheduleRow } from "./schedule-types.ts";
import type { SchedulerDeps } from "./scheduler.ts";

const { workspaces } = schema;

/** A failure alert, prepared in the transaction that claimed it and sent after it commits. */
export interface FailureAlert {
  to: string[];
  subject: string;
  text: string;
  workspaceId: string;
  scheduleId: string;
}

/**
 * The email sent once per streak of failed runs to a schedule's creator and the
 * workspace's owners and admins. It names the schedule and the last error's
 * code and sentence, never the prompt or the output.
 */
export function createRunAlerts(deps: Pick<SchedulerDeps, "mailer" | "publicUrl" | "log">) {
  return {
    async prepare(tx: Tx, s: ScheduleRow, run: RunRow): Promise<FailureAlert | null> {
      // Those who may manage schedules (owners and admins), and the creator.
      const to = await memberEmailsFor(tx, s.workspaceId, "schedules:manage", s.createdByUserId);
      if (to.length === 0) return null;
      const [ws] = await tx.select({ name: workspaces.name }).from(workspaces).where(eq(workspaces.id, s.workspaceId));
      const url = `${(await deps.publicUrl()).replace(/\/$/, "")}/w/${s.workspaceId}/schedules`;
      const text = [
        `The schedule “${s.name}”${ws ? ` in ${ws.name}` : ""} has failed ${s.consecutiveFailures} times in a row.`,
        `Last run: ${run.status === "timed_out" ? "timed out" : "failed"}${run.errorCode ? ` (${run.errorCode})` : ""}${run.error ? `: ${run.error}` : "."}`,
        "",
        "It keeps running on its schedule; you will not be emailed again until it has succeeded once.",
        `See its runs: ${url}`,
      ].join("\n");
      return {
        to,
        subject: `Schedule “${s.name}” failed ${s.consecutiveFailures} times in a row`,
        text,
        workspaceId: s.workspaceId,
        scheduleId: s.id,
      };
    },

    /** Sends a prepared alert (when mail is configured); a failure is logged, never thrown. */
    async send(alert: FailureAlert): Promise<void> {
      const mailer = await deps.mailer();
      if (!mailer) return;
      for (const to of alert.to) {
        await mailer
          .send({ to, subject: alert.subject, text: alert.text })
          .catch((err: unknown) =>
            deps.log?.warn(
              { err, workspaceId: alert.workspaceId, scheduleId: alert.scheduleId },
              "schedule failure alert not sent",
            ),
          );
      }
    },
  };
}
