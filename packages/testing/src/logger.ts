import { Writable } from "node:stream";
import { testHarnessSettings } from "@reef/config";
import pino from "pino";

/** Drops everything unless REEF_TEST_LOG names a level: tests assert on responses, not log lines. */
export const silentLogger = pino({ level: testHarnessSettings().logLevel });

/** A logger that keeps every line it writes (JSON, at `level` and above) in `lines`, for tests that read the log. */
export function recordingLogger(lines: string[], level: pino.Level = "debug"): pino.Logger {
  return pino(
    { level },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
}
