import { Fragment } from "react";
import type { Agent, Approval, Message, Role } from "../../api/types.ts";
import { ApprovalCard } from "../approval-card.tsx";
import { ChatErrorNotice, storedTurnError } from "./chat-errors.tsx";
import { ChatMessage } from "./message.tsx";
import type { FailedAnswers, LiveTurn } from "./use-chat-turns.ts";
import { WakingIndicator } from "./waking-indicator.tsx";

/** A new conversation: what the agent is for, and first messages to pick from. */
export function AgentIntro(props: { agent: Agent | undefined; onStarter: (text: string) => void }) {
  const a = props.agent;
  if (!a) return null;
  return (
    <div className="agent-intro">
      <h2>{a.name}</h2>
      {a.description ? <p>{a.description}</p> : <p className="hint">Ask {a.name} anything to start.</p>}
      {a.starterPrompts.length ? (
        <ul className="starters" aria-label="Suggestions">
          {a.starterPrompts.map((p) => (
            <li key={p}>
              <button type="button" className="starter" onClick={() => props.onStarter(p)}>
                {p}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** The conversation: stored messages, then the answer arriving now (if any), with its waking progress and cards. */
export function MessageList(props: {
  wid: string;
  role: Role | undefined;
  canManage: boolean;
  history: Message[];
  turn: LiveTurn | undefined;
  failed: FailedAnswers;
  /** Approval cards of this page's finished turns, by answer id. */
  asked: Record<number, Approval[]>;
  onAsked: (answerId: number, next: Approval) => void;
  refocus: string | null;
  onTurnApproval: (next: Approval) => void;
  /** Why sending is not possible now (an answer is arriving). */
  busy: string | null;
  onRegenerate: () => void;
  onEdit: (messageId: number, text: string) => void;
  now: number;
}) {
  const { turn } = props;
  // The live turn shows its own messages, and hides what it replaces; a stored answer still `streaming` is the turn.
  const shown = props.history.filter(
    (m) =>
      !(
        turn &&
        (m.status === "streaming" || turn.ids.includes(m.id) || (turn.replaceFrom !== null && m.id >= turn.replaceFrom))
      ),
  );
  const lastAnswer = turn ? undefined : shown.findLast((m) => m.role === "assistant");
  const hasUserBefore = (i: number) => shown.slice(0, i).some((m) => m.role === "user");

  return (
    <>
      {shown.map((m, i) => {
        const isLast = m === lastAnswer && hasUserBefore(i);
        return (
          <Fragment key={m.id}>
            <ChatMessage
              from={m.role}
              content={m.content}
              status={m.status}
              trace={m.trace}
              id={m.id}
              actions={
                m.role === "user"
                  ? { onEdit: (text) => props.onEdit(m.id, text), busy: props.busy }
                  : isLast
                    ? { onRegenerate: props.onRegenerate, busy: props.busy }
                    : undefined
              }
            >
              {m.status === "error" ? (
                <ChatErrorNotice
                  wid={props.wid}
                  error={props.failed[m.id] ?? storedTurnError(m)}
                  stored={m.error}
                  canManage={props.canManage}
                  onRetry={isLast && !props.busy ? props.onRegenerate : undefined}
                />
              ) : null}
            </ChatMessage>
            {props.asked[m.id]?.map((a) => (
              <ApprovalCard
                key={a.id}
                wid={props.wid}
                approval={a}
                role={props.role}
                focusOutcome={props.refocus === a.id}
                onChange={(next) => props.onAsked(m.id, next)}
              />
            ))}
          </Fragment>
        );
      })}
      {turn ? (
        <>
          {turn.user !== null ? <ChatMessage from="user" content={turn.user} live /> : null}
          {turn.waking ? <WakingIndicator waking={turn.waking} now={props.now} /> : null}
          {turn.answer || !turn.waking ? (
            <ChatMessage from="assistant" content={turn.answer} trace={turn.steps} id={turn.ids.at(-1)} live>
              {turn.error ? <ChatErrorNotice wid={props.wid} error={turn.error} canManage={props.canManage} /> : null}
            </ChatMessage>
          ) : null}
          {turn.approvals.map((a) => (
            <ApprovalCard
              key={a.id}
              wid={props.wid}
              approval={a}
              role={props.role}
              onChange={(next) => props.onTurnApproval(next)}
            />
          ))}
        </>
      ) : null}
    </>
  );
}
