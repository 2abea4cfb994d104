/**
 * Reef's reading of an agent's exec allowlist: which commands run without a
 * person's approval. Reef, not the gateway, applies it (see `agentExec` in
 * @reef/runtime): the gateway asks about every command and Reef answers.
 *
 * Two kinds of entry:
 * - one word (`ls`, `/usr/bin/git`, `~/bin/*`): the command it names, with any
 *   arguments. A bare name matches a command run by name (through PATH), a
 *   path glob a command run by path (`*` and `?` stay within one path segment,
 *   `**` crosses them), as in OpenClaw's allowlists;
 * - several words (`git status`, `npm run *`): the whole command, `*` matching
 *   any run of characters and `?` one. Without a wildcard it is one exact
 *   command, and matches only that very command (what "allow always" adds).
 *
 * `\*`, `\?` and `\\` are the literal characters. Anything but an exact entry
 * matches only a plain command: one program and its arguments, quoted or not,
 * with no chaining, pipes, redirections, substitutions, expansions of
 * variables, subshells or leading variable assignments. A command Reef cannot
 * read that way is never matched by a pattern: it asks (or is refused).
 */

/** Characters that make a command more than one program with its arguments. */
const SHELL_SYNTAX = /[;&|<>`$(){}\\\n\r#]/;

/** The words of a plain command, quotes removed; undefined when it is not one. */
export function plainCommand(command: string): string[] | undefined {
  const text = command.trim();
  if (!text || SHELL_SYNTAX.test(text)) return undefined;
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote) return undefined;
  if (inWord) words.push(word);
  const program = words[0];
  // `FOO=bar cmd` changes what cmd does (LD_PRELOAD, PATH…); an empty program name runs nothing known.
  if (!program || program.includes("=")) return undefined;
  return words;
}

interface Pattern {
  text: string;
  /** Regex source of the pattern, anchored by the caller. */
  regex: (segmentWildcards: boolean) => string;
  wildcard: boolean;
  literal: string;
}

function parsePattern(raw: string): Pattern {
  const text = raw.trim();
  const parts: ({ kind: "char"; ch: string } | { kind: "star" } | { kind: "globstar" } | { kind: "one" })[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === "\\" && i + 1 < text.length) {
      parts.push({ kind: "char", ch: text[++i] as string });
    } else if (ch === "*" && text[i + 1] === "*") {
      parts.push({ kind: "globstar" });
      i++;
    } else if (ch === "*") parts.push({ kind: "star" });
    else if (ch === "?") parts.push({ kind: "one" });
    else parts.push({ kind: "char", ch });
  }
  const quoteRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
  return {
    text,
    wildcard: parts.some((p) => p.kind !== "char"),
    literal: parts.map((p) => (p.kind === "char" ? p.ch : "")).join(""),
    regex: (segments) =>
      parts
        .map((p) => {
          if (p.kind === "char") return quoteRegex(p.ch);
          if (p.kind === "globstar") return ".*";
          if (p.kind === "star") return segments ? "[^/]*" : ".*";
          return segments ? "[^/]" : ".";
        })
        .join(""),
  };
}

function matchesOne(command: string, words: string[] | undefined, raw: string): boolean {
  const pattern = parsePattern(raw);
  if (!pattern.text) return false;
  if (/\s/.test(pattern.text)) {
    // Exact: that very command, whatever it holds. With wildcards: a plain command, spacing aside.
    if (!pattern.wildcard) return command.trim() === pattern.literal;
    const spaced = new RegExp(`^${pattern.regex(false).replace(/\s+/g, " ")}$`, "s");
    return words !== undefined && spaced.test(command.trim().replace(/\s+/g, " "));
  }
  const program = words?.[0];
  if (!program) return false;
  // A bare name stands for a program found through PATH, a path for that file: never one for the other.
  if (pattern.text.includes("/") !== program.includes("/")) return false;
  return new RegExp(`^${pattern.regex(true)}$`, "s").test(program);
}

/** Whether `command` runs without asking under `allowlist` (the first entry that matches, or undefined). */
export function matchAllowlist(command: string, allowlist: readonly string[]): string | undefined {
  const words = plainCommand(command);
  return allowlist.find((entry) => matchesOne(command, words, entry));
}

/**
 * The entry "allow always" adds for `command`: exactly that command (wildcards
 * escaped). Undefined for a command of one word, which as an entry would allow
 * the program with any arguments: that is for an admin to add on purpose.
 */
export function exactEntry(command: string): string | undefined {
  const whole = command.trim();
  // Entries are one line of at most 500 characters (execPatternSchema).
  if (!/\s/.test(whole) || /[\n\r\0]/.test(whole)) return undefined;
  const entry = whole.replace(/[\\*?]/g, "\\$&");
  return entry.length <= 500 ? entry : undefined;
}
