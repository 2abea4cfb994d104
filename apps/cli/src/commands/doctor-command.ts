import { resolve } from "node:path";
import { ConfigError } from "@reef/config";
import { Command } from "commander";
import {
  type CheckResult,
  checkBubblewrap,
  checkCallbackUrl,
  checkDocker,
  checkGatewayUsers,
  checkNode,
  checkPort,
  checkPostgres,
  checkSocat,
  type DoctorConfig,
} from "./doctor-checks.ts";
import { checkDataDir, checkDisk, checkSecretKey, checkServiceDir } from "./doctor-storage-checks.ts";
import { parsedConfigFor } from "./shared.ts";

/** Machine-readable `reef doctor --json`. */
export interface DoctorReport {
  /** No check failed (warnings allowed): the exit code is 0. */
  ok: boolean;
  checks: CheckResult[];
}

/**
 * Runs every check that applies to the configuration. Read-only: unlike
 * `reef start` it generates no key, creates no directory and no OS user.
 */
export async function runDoctor(config: DoctorConfig, configured: CheckResult): Promise<DoctorReport> {
  const asRoot = process.platform === "linux" && process.getuid?.() === 0;
  const checks: CheckResult[] = [configured, await checkNode(), await checkPostgres(config, asRoot)];
  if (config.runtimeDriver === "process") {
    const sandbox = checkBubblewrap(config);
    checks.push(sandbox, checkSocat(), checkGatewayUsers(asRoot, sandbox.status === "ok"));
  } else {
    if (config.runtimeDriver === "docker") checks.push(await checkDocker(config));
    checks.push(checkCallbackUrl(config));
  }
  checks.push(await checkPort(config), await checkDisk(config), await checkDataDir(config));
  checks.push(await checkSecretKey(config));
  if (asRoot && (!config.databaseUrl || config.runtimeDriver === "process")) checks.push(await checkServiceDir(config));
  return { ok: checks.every((c) => c.status !== "fail"), checks };
}

function render(report: DoctorReport): string {
  const width = Math.max(...report.checks.map((c) => c.title.length)) + 2;
  const lines = ["Reef doctor", ""];
  for (const c of report.checks) {
    lines.push(`  ${c.status.padEnd(6)}${c.title.padEnd(width)}${c.message}`);
    if (c.fix) lines.push(`  ${"".padEnd(6 + width)}fix: ${c.fix}`);
  }
  const fails = report.checks.filter((c) => c.status === "fail").length;
  const warns = report.checks.filter((c) => c.status === "warn").length;
  lines.push("");
  lines.push(
    fails || warns
      ? `${fails} to fix, ${warns} warning${warns === 1 ? "" : "s"}.`
      : "Everything Reef needs is in place.",
  );
  return `${lines.join("\n")}\n`;
}

export function doctorCommand(): Command {
  return new Command("doctor")
    .description(
      "Check this machine for Reef, as the user that runs it: Node, Postgres, the sandbox, Docker, the port, disk, and the data dir's and secret key's permissions; says what to fix. Exit 1 if any check fails.",
    )
    .option("--json", "print machine-readable JSON")
    .action(async (opts: { json?: boolean }, command: Command) => {
      let report: DoctorReport;
      try {
        // Parsed, not loaded: a doctor must not generate the secret key it is about to check.
        const parsed = await parsedConfigFor(command);
        const config: DoctorConfig = { ...parsed, dataDir: resolve(parsed.dataDir) };
        report = await runDoctor(config, {
          id: "config",
          title: "config",
          status: "ok",
          message: `${parsed.configFile ? `${parsed.configFile} and the environment` : "the environment"}; data dir ${config.dataDir}, driver ${config.runtimeDriver}`,
        });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        const check: CheckResult = {
          id: "config",
          title: "config",
          status: "fail",
          message: err.message.replace(/\n\s*/g, " "),
          fix: "correct the named setting (the README's Configuration table lists them all)",
        };
        report = { ok: false, checks: [check] };
      }
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : render(report));
      process.exitCode = report.ok ? 0 : 1;
    });
}
