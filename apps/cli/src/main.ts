#!/usr/bin/env node
import { REEF_VERSION } from "@reef/server";
import { Command } from "commander";
import { auditCommand } from "./commands/audit-command.ts";
import { createAdminCommand } from "./commands/create-admin-command.ts";
import { doctorCommand } from "./commands/doctor-command.ts";
import { migrateCommand } from "./commands/migrate-command.ts";
import { rotateKeysCommand } from "./commands/rotate-keys-command.ts";
import { schedulesCommand } from "./commands/schedules-command.ts";
import { startCommand } from "./commands/start-command.ts";
import { statusCommand } from "./commands/status-command.ts";

const program = new Command()
  .name("reef")
  .description("Reef: a self-hostable multi-tenant platform for OpenClaw agents.")
  .version(REEF_VERSION)
  .option("-c, --config <file>", "JSON config file (camelCase keys); environment variables take precedence")
  .showHelpAfterError();

program.addCommand(startCommand());
program.addCommand(migrateCommand());
program.addCommand(statusCommand());
program.addCommand(doctorCommand());
program.addCommand(createAdminCommand());
program.addCommand(auditCommand());
program.addCommand(rotateKeysCommand());
program.addCommand(schedulesCommand());

await program.parseAsync(process.argv);
