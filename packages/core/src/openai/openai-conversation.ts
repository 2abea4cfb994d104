import { createHash } from "node:crypto";
import { BadRequestError, type OpenAiMessage } from "@reef/contracts";

/** A client's message as Reef reads it: its role (developer counts as system) and its text. */
export interface PlainMessage {
  role: "system" | "user" | "assistant" | "tool";
  text: string;
}

/** A request's conversation, split the way a Reef session holds it. */
export interface Conversation {
  /** Every message, normalised (what the fingerprints hash). */
  messages: PlainMessage[];
  /** The last message: the user's new one, which this request answers. */
  text: string;
  /** What the session must already hold for this request to continue it (null: nothing can). */
  continues: string | null;
}

/** How much of a client's earlier conversation a new session's first prompt retells (the most recent part). */
const MAX_RETOLD_CHARS = 60_000;

const TEXT_PARTS = new Set(["text", "input_text"]);
const IMAGE_PARTS = new Set(["image_url", "input_image", "image"]);

/**
 * The text of a message's content: a string, or its text parts joined. Images
 * and other parts are refused with a 400 naming the message (agents are given
 * text only, for now).
 */
function textOf(content: OpenAiMessage["content"], index: number): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  const texts: string[] = [];
  for (const part of content) {
    if (TEXT_PARTS.has(part.type)) {
      texts.push(part.text ?? "");
      continue;
    }
    const what = IMAGE_PARTS.has(part.type) ? "Images are" : `Content parts of type "${part.type}" are`;
    throw new BadRequestError(`${what} not supported yet: send text only.`, {
      field: `messages[${index}].content`,
    });
  }
  return texts.join("\n");
}

/**
 * Normalises what clients vary without meaning to (line endings, surrounding
 * whitespace, `developer` for `system`), so a client that resends the
 * conversation as it received it matches its fingerprint.
 */
function normalise(message: OpenAiMessage, index: number): PlainMessage {
  const text = textOf(message.content, index).replace(/\r\n?/g, "\n").trim();
  const role = message.role === "developer" ? "system" : message.role;
  return { role, text };
}

/**
 * A hash of a conversation's messages, as `chat_sessions.openai_fingerprint`
 * holds it. Only roles and texts count; the hash is of their JSON, so no text
 * can forge a boundary between messages.
 */
export function fingerprintOf(messages: PlainMessage[]): string {
  const canonical = JSON.stringify(messages.map((m) => [m.role, m.text]));
  return createHash("sha256").update(canonical).digest("base64url");
}

/**
 * Reads a request's messages: the last must be the user's (400 otherwise, or
 * when it says nothing). `continues` is the fingerprint a session holding all
 * the earlier messages has; only a conversation whose earlier messages end with
 * an answer can continue one (a session's fingerprint always includes its last
 * answer).
 */
export function readConversation(raw: OpenAiMessage[]): Conversation {
  const messages = raw.map(normalise);
  const last = messages.at(-1);
  if (last?.role !== "user") {
    throw new BadRequestError("The last message must be the user's: Reef answers it.", { field: "messages" });
  }
  if (last.text === "") throw new BadRequestError("The last user message is empty.", { field: "messages" });
  const earlier = messages.slice(0, -1);
  const continues = earlier.at(-1)?.role === "assistant" ? fingerprintOf(earlier) : null;
  return { messages, text: last.text, continues };
}

/** The fingerprint a session holds once `answer` completes the conversation. */
export function fingerprintAfter(conversation: Conversation, answer: string): string {
  return fingerprintOf([...conversation.messages, { role: "assistant", text: answer.replace(/\r\n?/g, "\n").trim() }]);
}

const LABELS: Record<PlainMessage["role"], string> = {
  system: "Instructions",
  user: "User",
  assistant: "Assistant",
  tool: "Tool result",
};

/**
 * The first prompt of a new session: the client's instructions (system and
 * developer messages) and its earlier messages retold, then the new message.
 * The gateway holds none of them (the session is new), as after an edit in
 * Reef's own chat (see `withEarlierTurns` in chat-service.ts).
 */
export function firstPrompt(conversation: Conversation): string {
  const earlier = conversation.messages.slice(0, -1).filter((m) => m.text !== "");
  const instructions = earlier.filter((m) => m.role === "system").map((m) => m.text);
  const said = earlier.filter((m) => m.role !== "system");
  if (instructions.length === 0 && said.length === 0) return conversation.text;
  const parts: string[] = [];
  if (instructions.length) parts.push(`[Instructions from the client:]\n\n${instructions.join("\n\n")}`);
  if (said.length) {
    let history = said.map((m) => `${LABELS[m.role]}: ${m.text}`).join("\n\n");
    if (history.length > MAX_RETOLD_CHARS) history = `…${history.slice(-MAX_RETOLD_CHARS)}`;
    parts.push(`[This conversation started elsewhere, so you are told what was said before:]\n\n${history}`);
  }
  parts.push(`[The person's new message:]\n\n${conversation.text}`);
  return parts.join("\n\n");
}
