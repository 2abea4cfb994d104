import { createServer } from "node:net";
import { listListeners } from "./listeners.ts";

function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * Hands out loopback port blocks. A gateway claims ports above its base (up to
 * base+110), so bases are spaced by `block`, and a block is only given out if
 * nothing listens anywhere in it right now (another tenant's process may squat
 * any port of a block) and its base can be bound.
 */
export class PortAllocator {
  readonly #used = new Set<number>();
  readonly #from: number;
  readonly #to: number;
  readonly #block: number;

  constructor(from: number, to: number, block: number) {
    this.#from = from;
    this.#to = to;
    this.#block = block;
  }

  async allocate(): Promise<number> {
    const slots = Math.floor((this.#to - this.#from) / this.#block);
    const start = Math.floor(Math.random() * slots);
    const listening = (await listListeners()).map((l) => l.port);
    const busy = (base: number) => listening.some((p) => p >= base && p < base + this.#block);
    for (let i = 0; i < slots; i++) {
      const port = this.#from + ((start + i) % slots) * this.#block;
      if (this.#used.has(port) || busy(port)) continue;
      this.#used.add(port);
      if (await free(port)) return port;
      this.#used.delete(port);
    }
    throw new Error(`no free gateway port block between ${this.#from} and ${this.#to}`);
  }

  release(port: number): void {
    this.#used.delete(port);
  }
}
