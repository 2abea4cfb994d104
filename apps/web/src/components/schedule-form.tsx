import { useMutation, useQuery } from "@tanstack/react-query";
import { useEffect, useId, useState } from "react";
import { ApiError, api, fieldErrors, messageOf } from "../api/client.ts";
import type { CreatedSchedule, Schedule, SchedulePreview } from "../api/types.ts";
import { agentsQuery } from "./agent-form.tsx";
import { Field, Notice } from "./forms.tsx";
import {
  browserZone,
  CRON_PRESETS,
  inZone,
  isoToZoned,
  type PresetId,
  presetOf,
  relative,
  zonedToIso,
  zoneList,
} from "./schedule-text.ts";

type Kind = Schedule["kind"];

const KINDS: { value: Kind; label: string; hint: string }[] = [
  { value: "cron", label: "Repeat on a schedule", hint: "Every weekday morning, every hour, every Monday…" },
  { value: "once", label: "Once", hint: "At one date and time, then never again." },
  {
    value: "webhook",
    label: "When another system calls a webhook",
    hint: "n8n, a CI job or any program sends a signed request and the agent gets to work.",
  },
];

/** `value`, but only once it has stopped changing for `ms`: the preview asks the server once per pause in typing. */
function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/** The next five firings of a cron rule in its zone, from the server (the same rules it will fire by). */
function CronPreview(props: { wid: string; cron: string; timezone: string; onError: (e: ApiError | null) => void }) {
  const cron = useDebounced(props.cron.trim(), 400);
  const timezone = useDebounced(props.timezone, 400);
  const preview = useQuery({
    queryKey: ["schedule-preview", props.wid, cron, timezone],
    queryFn: () =>
      api<SchedulePreview>(
        "GET",
        `/api/v1/workspaces/${props.wid}/schedules/preview?${new URLSearchParams({ cron, timezone })}`,
      ),
    enabled: cron.length > 0,
    retry: false,
    staleTime: 30_000,
  });
  const { onError } = props;
  const error = preview.error instanceof ApiError ? preview.error : null;
  useEffect(() => onError(cron ? error : null), [error, cron, onError]);
  if (!cron || preview.isError) return null;
  return (
    <div className="schedule-preview" aria-live="polite">
      <p className="label">Next five runs ({timezone})</p>
      {preview.data ? (
        <ol aria-label="Next five runs">
          {preview.data.next.map((iso) => (
            <li key={iso}>
              {inZone(iso, preview.data.timezone)} <span className="hint">({relative(iso)})</span>
            </li>
          ))}
        </ol>
      ) : (
        <p className="hint">Working out the next runs…</p>
      )}
    </div>
  );
}

/** Create a schedule, or change one (`schedule`): its kind and agent stay as they were. */
export function ScheduleForm(props: {
  wid: string;
  schedule?: Schedule;
  onDone: (saved: CreatedSchedule | Schedule) => void;
  onCancel: () => void;
}) {
  const s = props.schedule;
  const id = useId();
  const agents = useQuery(agentsQuery(props.wid));
  const initialPreset = s?.cron ? presetOf(s.cron) : { preset: "weekdays" as PresetId, time: "09:00" };
  const [name, setName] = useState(s?.name ?? "");
  const [agentId, setAgentId] = useState(s?.agentId ?? "");
  const [kind, setKind] = useState<Kind>(s?.kind ?? "cron");
  const [preset, setPreset] = useState<PresetId>(initialPreset.preset);
  const [time, setTime] = useState(initialPreset.time);
  const [cron, setCron] = useState(s?.cron ?? "0 9 * * 1-5");
  const [timezone, setTimezone] = useState(s?.timezone ?? browserZone());
  const [runAt, setRunAt] = useState(s?.runAt ? isoToZoned(s.runAt, s.timezone) : "");
  const [prompt, setPrompt] = useState(s?.prompt ?? "");
  const [minutes, setMinutes] = useState(s ? String(Math.round(s.timeoutSeconds / 60)) : "");
  const [share, setShare] = useState(s?.shareOutput ?? false);
  const [notifyUrl, setNotifyUrl] = useState(s?.notifyUrl ?? "");
  const [previewError, setPreviewError] = useState<ApiError | null>(null);
  const zones = zoneList(timezone);
  const agentList = agents.data?.items ?? [];
  const chosenAgent = agentId || agentList[0]?.id || "";

  function choosePreset(next: PresetId, at = time) {
    setPreset(next);
    const p = CRON_PRESETS.find((x) => x.id === next);
    const [h, m] = at.split(":").map(Number);
    if (p && next !== "custom") setCron(p.cron(h ?? 9, m ?? 0));
  }

  const save = useMutation({
    mutationFn: () => {
      const when =
        kind === "cron"
          ? { cron: cron.trim(), timezone }
          : kind === "once"
            ? { runAt: zonedToIso(runAt, timezone) ?? runAt, timezone }
            : {};
      const timeoutSeconds = minutes ? Math.round(Number(minutes) * 60) : undefined;
      const common = {
        name: name.trim(),
        prompt,
        shareOutput: share,
        ...(timeoutSeconds ? { timeoutSeconds } : {}),
        notifyUrl: notifyUrl.trim() || null,
        ...when,
      };
      if (s) return api<Schedule>("PATCH", `/api/v1/workspaces/${props.wid}/schedules/${s.id}`, common);
      return api<CreatedSchedule>("POST", `/api/v1/workspaces/${props.wid}/schedules`, {
        ...common,
        agentId: chosenAgent,
        kind,
      });
    },
    onSuccess: props.onDone,
  });
  const errors = fieldErrors(save.error);
  // The preview's refusal (bad rule, too frequent, unknown zone) shows on its field before anything is saved.
  const shownPreviewError = kind === "cron" ? previewError : null;
  const previewField = (shownPreviewError?.details as { field?: string } | undefined)?.field;
  const cronError =
    errors.cron ?? (shownPreviewError && previewField !== "timezone" ? messageOf(shownPreviewError) : undefined);
  const zoneError =
    errors.timezone ?? (shownPreviewError && previewField === "timezone" ? messageOf(shownPreviewError) : undefined);
  const shownFields = new Set([
    "name",
    "agentId",
    "cron",
    "timezone",
    "runAt",
    "prompt",
    "timeoutSeconds",
    "notifyUrl",
  ]);
  const formError = save.isError && !Object.keys(errors).some((k) => shownFields.has(k));
  const needsTime = CRON_PRESETS.find((p) => p.id === preset)?.needsTime ?? false;
  const why = !name.trim()
    ? "Name the schedule first."
    : !chosenAgent
      ? "Add an agent to this workspace first."
      : !prompt.trim()
        ? "Write what the agent should be asked."
        : kind === "once" && !runAt
          ? "Pick the date and time."
          : null;

  return (
    <form
      className="card schedule-form"
      aria-labelledby={`${id}-title`}
      onSubmit={(e) => {
        e.preventDefault();
        if (!why) save.mutate();
      }}
    >
      <h2 id={`${id}-title`}>{s ? `Edit ${s.name}` : "New schedule"}</h2>
      <Field
        label="Name"
        value={name}
        maxLength={100}
        placeholder="Morning stand-up summary"
        onChange={(e) => setName(e.target.value)}
        error={errors.name}
      />
      <div className="field">
        <label htmlFor={`${id}-agent`}>Agent</label>
        <select
          id={`${id}-agent`}
          value={chosenAgent}
          disabled={!!s}
          aria-describedby={s ? `${id}-agent-hint` : undefined}
          onChange={(e) => setAgentId(e.target.value)}
        >
          {s && !s.agentId ? <option value="">{s.agentName ?? "Deleted agent"}</option> : null}
          {agentList.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name}
            </option>
          ))}
        </select>
        {s ? (
          <small id={`${id}-agent-hint`} className="hint">
            A schedule keeps its agent; create a new one for another agent.
          </small>
        ) : null}
        {errors.agentId ? <small className="field-error">{errors.agentId}</small> : null}
      </div>
      <fieldset className="field schedule-kinds" disabled={!!s}>
        <legend className="label">When it runs</legend>
        {KINDS.map((k) => (
          <label key={k.value} className="radio-option">
            <input
              type="radio"
              name={`${id}-kind`}
              value={k.value}
              checked={kind === k.value}
              onChange={() => setKind(k.value)}
            />
            <span>{k.label}</span>
            <small className="hint">{k.hint}</small>
          </label>
        ))}
      </fieldset>
      {kind === "cron" ? (
        <>
          <div className="schedule-helper">
            <div className="field">
              <label htmlFor={`${id}-preset`}>Repeat</label>
              <select id={`${id}-preset`} value={preset} onChange={(e) => choosePreset(e.target.value as PresetId)}>
                {CRON_PRESETS.map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.label}
                  </option>
                ))}
              </select>
            </div>
            {needsTime ? (
              <Field
                label="At"
                type="time"
                value={time}
                required
                onChange={(e) => {
                  setTime(e.target.value);
                  if (e.target.value) choosePreset(preset, e.target.value);
                }}
              />
            ) : null}
          </div>
          <Field
            label="Cron expression"
            value={cron}
            spellCheck={false}
            autoComplete="off"
            className="mono"
            onChange={(e) => {
              setCron(e.target.value);
              setPreset(presetOf(e.target.value).preset);
            }}
            hint="Five fields: minute, hour, day of month, month, day of week. For example 30 8 * * 1-5 is 08:30 on weekdays."
            error={cronError}
          />
        </>
      ) : null}
      {kind !== "webhook" ? (
        <div className="field">
          <label htmlFor={`${id}-zone`}>Time zone</label>
          <select
            id={`${id}-zone`}
            value={timezone}
            aria-invalid={zoneError ? true : undefined}
            aria-describedby={zoneError ? `${id}-zone-error` : undefined}
            onChange={(e) => setTimezone(e.target.value)}
          >
            {zones.map((z) => (
              <option key={z} value={z}>
                {z.replaceAll("_", " ")}
              </option>
            ))}
          </select>
          {zoneError ? (
            <small id={`${id}-zone-error`} className="field-error">
              {zoneError}
            </small>
          ) : null}
        </div>
      ) : null}
      {kind === "cron" ? (
        <CronPreview wid={props.wid} cron={cron} timezone={timezone} onError={setPreviewError} />
      ) : null}
      {kind === "once" ? (
        <Field
          label="Date and time"
          type="datetime-local"
          value={runAt}
          onChange={(e) => setRunAt(e.target.value)}
          hint={`Read in ${timezone}.`}
          error={errors.runAt}
        />
      ) : null}
      <div className="field">
        <label htmlFor={`${id}-prompt`}>Prompt</label>
        <textarea
          id={`${id}-prompt`}
          rows={4}
          value={prompt}
          maxLength={20_000}
          placeholder={
            kind === "webhook"
              ? "A new issue was opened: {{body.title}}. Suggest who should look at it."
              : "Summarise yesterday's open support tickets."
          }
          aria-invalid={errors.prompt ? true : undefined}
          aria-describedby={`${id}-prompt-hint${errors.prompt ? ` ${id}-prompt-error` : ""}`}
          onChange={(e) => setPrompt(e.target.value)}
        />
        <small id={`${id}-prompt-hint`} className="hint">
          {kind === "webhook" ? (
            <>
              What the agent is sent on each call. <code>{"{{body.field}}"}</code> is replaced by that field of the
              call's JSON body (<code>{"{{body.issue.title}}"}</code> reaches inside); a missing field becomes empty.
            </>
          ) : (
            "What the agent is sent each time. It answers as you, with your access."
          )}
        </small>
        {errors.prompt ? (
          <small id={`${id}-prompt-error`} className="field-error">
            {errors.prompt}
          </small>
        ) : null}
      </div>
      <Field
        label="Time limit in minutes (optional)"
        type="number"
        inputMode="numeric"
        min={1}
        max={360}
        value={minutes}
        onChange={(e) => setMinutes(e.target.value)}
        hint="A run that takes longer is stopped, waiting for approvals included."
        error={errors.timeoutSeconds}
      />
      <label className="inline-check">
        <input type="checkbox" checked={share} onChange={(e) => setShare(e.target.checked)} /> Let everyone in the
        workspace read the output
      </label>
      <Field
        label="Notify this URL when a run ends (optional)"
        type="url"
        value={notifyUrl}
        placeholder="https://hooks.example.com/reef"
        onChange={(e) => setNotifyUrl(e.target.value)}
        hint="Reef posts the outcome there, signed with the schedule's secret."
        error={errors.notifyUrl}
      />
      {formError ? <Notice>{messageOf(save.error)}</Notice> : null}
      <div className="actions">
        <button type="submit" disabled={!!why || save.isPending} aria-describedby={why ? `${id}-why` : undefined}>
          {save.isPending ? "Saving…" : s ? "Save changes" : "Create schedule"}
        </button>
        <button type="button" className="secondary" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
      {why ? (
        <small id={`${id}-why`} className="disabled-why">
          {why}
        </small>
      ) : null}
    </form>
  );
}
