import { Agent, type Dispatcher, fetch as undiciFetch } from "undici";

/**
 * A gateway's endpoint is either `http://127.0.0.1:<port>` (a gateway on a
 * loopback port, a container, a pod) or `unix:<absolute socket path>` (a
 * sandboxed gateway, which Reef reaches only over a Unix socket in its runtime
 * directory). These helpers let every client speak to both.
 */

/** The endpoint Reef stores for a gateway behind a Unix socket. */
export function unixEndpoint(socketPath: string): URL {
  if (!socketPath.startsWith("/")) throw new Error(`a socket path must be absolute: ${socketPath}`);
  return new URL(`unix:${socketPath}`);
}

/** The socket path of a `unix:` endpoint, or undefined for an HTTP one. */
export function endpointSocket(endpoint: URL): string | undefined {
  return endpoint.protocol === "unix:" ? decodeURIComponent(endpoint.pathname) : undefined;
}

const agents = new Map<string, Agent>();

/**
 * The connection pool for a socket: one per socket path, kept (a gateway that
 * restarts keeps its path). Undici reconnects when the gateway behind it is new.
 */
export function socketDispatcher(socketPath: string): Dispatcher {
  let agent = agents.get(socketPath);
  if (!agent) {
    agent = new Agent({ connect: { socketPath } });
    agents.set(socketPath, agent);
  }
  return agent;
}

/**
 * The HTTP(S) URL to request `path` at and, for a socket endpoint, the
 * dispatcher that carries it there. The host of a socket request is loopback:
 * the gateway inside its sandbox sees the bridge's loopback connection.
 */
export function gatewayTarget(endpoint: URL, path: string): { url: URL; dispatcher?: Dispatcher } {
  const socket = endpointSocket(endpoint);
  if (!socket) return { url: new URL(path, endpoint) };
  return { url: new URL(path, "http://127.0.0.1"), dispatcher: socketDispatcher(socket) };
}

/**
 * `fetch` to a gateway, whatever its endpoint. HTTP endpoints use the global
 * fetch as before; socket endpoints use undici's with the socket's dispatcher.
 */
export function gatewayFetch(endpoint: URL, path: string, init: RequestInit = {}): Promise<Response> {
  const { url, dispatcher } = gatewayTarget(endpoint, path);
  if (!dispatcher) return fetch(url, init);
  // undici's Response is the same class the global fetch returns, from a newer undici.
  return undiciFetch(url, { ...(init as object), dispatcher }) as unknown as Promise<Response>;
}
