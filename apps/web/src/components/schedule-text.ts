import type { Schedule, ScheduleRun } from "../api/types.ts";

/** The presets of the cron helper: what people ask for most, as cron rules. `at` is "HH:MM". */
export const CRON_PRESETS = [
  { id: "weekdays", label: "Every weekday at…", needsTime: true, cron: (h: number, m: number) => `${m} ${h} * * 1-5` },
  { id: "daily", label: "Every day at…", needsTime: true, cron: (h: number, m: number) => `${m} ${h} * * *` },
  { id: "monday", label: "Every Monday at…", needsTime: true, cron: (h: number, m: number) => `${m} ${h} * * 1` },
  { id: "hourly", label: "Every hour", needsTime: false, cron: () => "0 * * * *" },
  { id: "custom", label: "Custom (cron expression)", needsTime: false, cron: () => "" },
] as const;
export type PresetId = (typeof CRON_PRESETS)[number]["id"];

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const pad = (n: number) => String(n).padStart(2, "0");
const num = (s: string | undefined) => (s !== undefined && /^\d{1,2}$/.test(s) ? Number(s) : null);

/** Which preset (and time) a cron rule is, so editing an existing schedule opens the helper where it was. */
export function presetOf(cron: string): { preset: PresetId; time: string } {
  const f = cron.trim().split(/\s+/);
  const [m, h, dom, mon, dow] = f;
  const mm = num(m);
  const hh = num(h);
  if (f.length === 5 && mm !== null && hh !== null && dom === "*" && mon === "*") {
    const time = `${pad(hh)}:${pad(mm)}`;
    if (dow === "1-5") return { preset: "weekdays", time };
    if (dow === "*") return { preset: "daily", time };
    if (dow === "1") return { preset: "monday", time };
  }
  if (cron.trim() === "0 * * * *") return { preset: "hourly", time: "09:00" };
  return { preset: "custom", time: "09:00" };
}

/** A cron rule in words where it is a common shape ("every weekday at 09:00"), else null. */
export function cronInWords(cron: string): string | null {
  const f = cron.trim().split(/\s+/);
  if (f.length !== 5) return null;
  const [m, h, dom, mon, dow] = f;
  const mm = num(m);
  const hh = num(h);
  if (dom !== "*" || mon !== "*") return null;
  if (mm !== null && hh !== null) {
    const at = `at ${pad(hh)}:${pad(mm)}`;
    if (dow === "*") return `Every day ${at}`;
    if (dow === "1-5") return `Every weekday ${at}`;
    if (dow === "0,6" || dow === "6,0") return `Every weekend day ${at}`;
    const d = num(dow);
    if (d !== null && d <= 7) return `Every ${DAYS[d % 7]} ${at}`;
    return null;
  }
  if (mm !== null && h === "*" && dow === "*") return mm === 0 ? "Every hour" : `Every hour at :${pad(mm)}`;
  const every = m?.match(/^\*\/(\d+)$/);
  if (every && h === "*" && dow === "*") return `Every ${every[1]} minutes`;
  const everyH = h?.match(/^\*\/(\d+)$/);
  if (mm !== null && everyH && dow === "*") return `Every ${everyH[1]} hours at :${pad(mm)}`;
  return null;
}

/** A time in a zone, e.g. "Mon 8 Dec 2026, 09:00" (the zone is said once, next to it). */
export function inZone(iso: string, timeZone: string): string {
  try {
    return new Date(iso).toLocaleString(undefined, {
      timeZone,
      weekday: "short",
      day: "numeric",
      month: "short",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
  } catch {
    return new Date(iso).toLocaleString();
  }
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** "in 5 minutes", "2 hours ago", "tomorrow". */
export function relative(iso: string, now = Date.now()): string {
  const s = (Date.parse(iso) - now) / 1000;
  const abs = Math.abs(s);
  if (abs < 45) return s >= 0 ? "in a moment" : "just now";
  if (abs < 3600) return rtf.format(Math.round(s / 60), "minute");
  if (abs < 86_400) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86_400), "day");
}

/** When a schedule fires, in words: the rule and its zone, the one-off time, or "When called by webhook". */
export function whenOf(s: Schedule): string {
  if (s.kind === "webhook") return "When another system calls its webhook";
  if (s.kind === "once") return s.runAt ? `Once, ${inZone(s.runAt, s.timezone)} (${s.timezone})` : "Once";
  const words = s.cron ? cronInWords(s.cron) : null;
  return `${words ?? `Cron ${s.cron ?? ""}`} (${s.timezone})`;
}

export const KIND_LABEL: Record<Schedule["kind"], string> = {
  cron: "Repeats",
  once: "Once",
  webhook: "Webhook",
};

export const STATUS_LABEL: Record<ScheduleRun["status"], string> = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  skipped: "Skipped",
  timed_out: "Timed out",
};

export const TRIGGER_LABEL: Record<ScheduleRun["trigger"], string> = {
  schedule: "On schedule",
  manual: "Run now",
  webhook: "Webhook",
};

/** Why a run was skipped or failed, beyond the server's sentence, for the codes that are Reef's own. */
export const RUN_ERROR_TEXT: Record<string, string> = {
  SKIPPED_AGENT_DELETED: "The agent was deleted.",
  SKIPPED_OWNER_GONE: "The person who created the schedule can no longer use this workspace.",
  SKIPPED_QUOTA: "The workspace had used up its allowance.",
  SKIPPED_LIMITS: "The workspace was over its limits.",
  SKIPPED_BUSY: "The previous run's answer was still arriving.",
  TIMED_OUT: "The run took longer than its time limit and was stopped.",
};

/** While a run is queued or running, how often its row and output are asked for again. */
export const RUN_POLL_MS = 1500;

export const isActive = (status: ScheduleRun["status"]) => status === "queued" || status === "running";

/** The browser's own zone, the default for a new schedule. */
export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** Every IANA zone the browser knows, with `keep` (the current value) always among them. */
export function zoneList(keep: string): string[] {
  let zones: string[] = [];
  try {
    zones = Intl.supportedValuesOf("timeZone");
  } catch {}
  const all = new Set(["UTC", ...zones]);
  all.add(keep);
  return [...all].sort();
}

/** The zone's offset from UTC at instant `ms`, in milliseconds. */
function offsetAt(ms: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(ms));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** A `datetime-local` value ("2026-12-08T09:00") read as wall time in `timeZone`, as an ISO instant. */
export function zonedToIso(local: string, timeZone: string): string | null {
  const m = local.match(/^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/);
  if (!m) return null;
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  try {
    // Twice: the offset at the guessed instant can differ from the offset at the answer around a DST change.
    let t = wall - offsetAt(wall, timeZone);
    t = wall - offsetAt(t, timeZone);
    return new Date(t).toISOString();
  } catch {
    return null;
  }
}

/** The other way: an ISO instant as a `datetime-local` value in `timeZone`. */
export function isoToZoned(iso: string, timeZone: string): string {
  const ms = Date.parse(iso);
  try {
    const d = new Date(ms + offsetAt(ms, timeZone));
    return d.toISOString().slice(0, 16);
  } catch {
    return new Date(ms).toISOString().slice(0, 16);
  }
}

/** "1.2 s", "3 min 4 s". */
export function duration(ms: number | null): string {
  if (ms === null) return "—";
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}
