import http, { type IncomingHttpHeaders } from "node:http";

/** An HTTP answer read whole from a Unix socket, with when each chunk arrived. */
export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** When each chunk arrived, ms after the request was sent. */
  arrivals: number[];
}

/** Sends one HTTP request over the Unix socket at `socketPath` (a runtime's outbound side), as its gateway would. */
export function call(
  socketPath: string,
  opts: { path: string; method?: string; credential?: string; body?: unknown; headers?: Record<string, string> },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sent = performance.now();
    const req = http.request(
      {
        socketPath,
        path: opts.path,
        method: opts.method ?? (opts.body === undefined ? "GET" : "POST"),
        headers: {
          ...(opts.credential ? { authorization: `Bearer ${opts.credential}` } : {}),
          ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
          ...opts.headers,
        },
      },
      (res) => {
        const arrivals: number[] = [];
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          arrivals.push(performance.now() - sent);
          text += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, arrivals }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body === undefined ? undefined : JSON.stringify(opts.body));
  });
}
