export * from "./roles.ts";
export * from "./workspaces.ts";
