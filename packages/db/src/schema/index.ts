export * from "./audit.ts";
export * from "./roles.ts";
export * from "./runtimes.ts";
export * from "./users.ts";
export * from "./workspaces.ts";
