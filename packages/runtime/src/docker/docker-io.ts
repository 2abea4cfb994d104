import type Docker from "dockerode";
import { pack } from "tar-stream";
import type { RuntimeSpec } from "../driver.ts";

/**
 * A tar for the Engine API's archive upload into the state volume: `dirs`
 * (mode 0700) and `files` (mode 0600), all owned by `uid`. (The Engine skips
 * an entry for the upload's root itself: see {@link claimVolume}.)
 */
export async function stateArchive(uid: number, dirs: string[], files: Record<string, string>): Promise<Buffer> {
  const archive = pack();
  const owner = { uid, gid: uid };
  for (const dir of dirs) archive.entry({ name: `${dir}/`, type: "directory", mode: 0o700, ...owner });
  for (const [name, content] of Object.entries(files)) archive.entry({ name, mode: 0o600, ...owner }, content);
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface ClaimVolumeInput {
  /** Any image with `node` on its PATH (the gateway's). */
  image: string;
  volume: string;
  /** Where the gateway mounts it. */
  target: string;
  uid: number;
  name: string;
  labels: Record<string, string>;
}

/**
 * Hands a fresh named volume's root to the gateway user (mode 0700). Docker
 * creates it root-owned (the gateway mounts it without copying the image's
 * mount point in), and its archive upload never changes the root of an
 * upload, so a one-shot container does it: root with CAP_CHOWN alone, no network, a
 * read-only root, removed once done.
 */
export async function claimVolume(docker: Docker, input: ClaimVolumeInput): Promise<void> {
  const script = `const fs=require("fs");fs.chmodSync(${JSON.stringify(input.target)},0o700);fs.chownSync(${JSON.stringify(input.target)},${input.uid},${input.uid})`;
  const options = {
    name: input.name,
    Image: input.image,
    User: "0:0",
    Entrypoint: ["node", "-e", script],
    Cmd: [],
    Labels: input.labels,
    HostConfig: {
      NetworkMode: "none",
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      // chmod first, while root owns it: chown is then the only privilege needed.
      CapAdd: ["CHOWN"],
      SecurityOpt: ["no-new-privileges:true"],
      Memory: 256 * 1024 * 1024,
      PidsLimit: 64,
      // Docker copies the image's mount point (owner included) into an empty volume at every mount, unless told not to.
      Mounts: [
        {
          Type: "volume",
          Source: input.volume,
          Target: input.target,
          ReadOnly: false,
          VolumeOptions: { NoCopy: true },
        },
      ],
    },
  };
  // One a Reef that died meanwhile left behind would hold the name.
  await docker
    .getContainer(input.name)
    .remove({ force: true })
    .catch(() => {});
  // dockerode's types want every volume option; the Engine takes any subset.
  const container = await docker.createContainer(options as unknown as Docker.ContainerCreateOptions);
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    if (StatusCode !== 0) {
      const output = await lastOutput(container, 10, []).catch(() => "");
      throw new Error(`could not hand the state volume to the gateway user (exit ${StatusCode}): ${output}`);
    }
  } finally {
    await container.remove({ force: true }).catch(() => {});
  }
}

/** Every secret a start hands its gateway: none may appear in what Reef logs or records of it. */
export function secretsOf(spec: RuntimeSpec): string[] {
  const outbound = spec.outbound;
  return [
    spec.token,
    ...spec.gateway.providers.map((p) => p.apiKey ?? ""),
    ...Object.values(outbound?.credentials ?? {}),
    outbound?.mcpCredential ?? "",
  ].filter((s) => s.length >= 4);
}

/**
 * The Engine multiplexes a container's stdout and stderr (no TTY) as frames: a
 * byte for the stream, three zero bytes, a big-endian length, the payload.
 */
function demux(raw: Buffer): string {
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= raw.length && raw.readUInt8(at) <= 2 && raw.readUIntBE(at + 1, 3) === 0) {
    const size = raw.readUInt32BE(at + 4);
    parts.push(raw.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  // Anything that was not framed (a TTY container) is taken as it is.
  if (at < raw.length) parts.push(raw.subarray(at));
  return Buffer.concat(parts).toString("utf8");
}

/** The container's last `lines` lines of output, with every one of `secrets` redacted. */
export async function lastOutput(container: Docker.Container, lines: number, secrets: string[]): Promise<string> {
  const raw = (await container.logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
  let text = demux(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)));
  for (const secret of secrets) text = text.split(secret).join("[redacted]");
  // Terminal colours make a recorded reason unreadable.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences start with ESC.
  text = text.replace(/\u001b\[[0-9;]*m/g, "");
  return text
    .split("\n")
    .filter((l) => l.trim())
    .slice(-lines)
    .join("\n");
}
