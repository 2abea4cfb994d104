import { BadRequestError } from "@reef/contracts";
import { Cron } from "croner";

/** How many upcoming firings the minimum-interval check looks at. */
const GAP_SAMPLE = 60;

/** "1 minute", "90 seconds", "2 hours": how people say an interval. */
export function describeSeconds(seconds: number): string {
  const [n, unit] =
    seconds % 3600 === 0
      ? [seconds / 3600, "hour"]
      : seconds % 60 === 0
        ? [seconds / 60, "minute"]
        : [seconds, "second"];
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

/** A validated cron rule: its expression read in `timezone`. */
export interface CronRule {
  cron: string;
  timezone: string;
}

/** Throws INVALID_TIMEZONE unless `timezone` is an IANA zone this runtime knows. */
export function checkTimezone(timezone: string): string {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: timezone }).resolvedOptions().timeZone;
  } catch {
    throw new BadRequestError(
      `“${timezone}” is not a time zone. Use an IANA name such as Europe/Berlin or America/New_York.`,
      { field: "timezone" },
      "INVALID_TIMEZONE",
    );
  }
}

function parse(rule: CronRule): Cron {
  const fields = rule.cron.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    throw new BadRequestError(
      `A cron expression has 5 fields (minute hour day month weekday), or 6 with seconds first; this one has ${fields}.`,
      { field: "cron" },
      "INVALID_CRON",
    );
  }
  try {
    // Paused: only ever asked for its next runs, never left running a timer.
    return new Cron(rule.cron, { timezone: rule.timezone, paused: true, mode: fields === 6 ? "6-part" : "5-part" });
  } catch (err) {
    throw new BadRequestError(
      `The cron expression is not valid: ${(err as Error).message}`,
      { field: "cron" },
      "INVALID_CRON",
    );
  }
}

/** The next `count` firings strictly after `from`, DST-correct in the rule's zone. */
export function nextFirings(rule: CronRule, count: number, from = new Date()): Date[] {
  return parse(rule).nextRuns(count, from);
}

/** The next firing strictly after `from`, or null when the rule never fires again. */
export function nextFiring(rule: CronRule, from = new Date()): Date | null {
  return parse(rule).nextRun(from) ?? null;
}

/**
 * Checks a cron rule parses in a known zone, fires at all, and never fires
 * more often than every `minIntervalSeconds` (SCHEDULE_TOO_FREQUENT).
 * @returns its next firings (the preview people see).
 */
export function checkCronRule(rule: CronRule, minIntervalSeconds: number, from = new Date()): Date[] {
  const timezone = checkTimezone(rule.timezone);
  const runs = nextFirings({ cron: rule.cron, timezone }, GAP_SAMPLE, from);
  if (runs.length === 0) {
    throw new BadRequestError("This cron expression never fires.", { field: "cron" }, "INVALID_CRON");
  }
  for (let i = 1; i < runs.length; i++) {
    const gap = ((runs[i] as Date).getTime() - (runs[i - 1] as Date).getTime()) / 1000;
    if (gap < minIntervalSeconds) {
      throw new BadRequestError(
        `This schedule would fire ${describeSeconds(gap)} apart; this server allows at most one run every ${describeSeconds(minIntervalSeconds)}.`,
        { field: "cron", minIntervalSeconds },
        "SCHEDULE_TOO_FREQUENT",
      );
    }
  }
  return runs;
}
