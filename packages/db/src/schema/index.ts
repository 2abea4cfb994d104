export * from "./audit.ts";
export * from "./chat.ts";
export * from "./providers.ts";
export * from "./roles.ts";
export * from "./runtimes.ts";
export * from "./users.ts";
export * from "./vault.ts";
export * from "./workspaces.ts";
