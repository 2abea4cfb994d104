import {
  type ContainerLimits,
  GATEWAY_ENTRYPOINT,
  GATEWAY_UID,
  gatewayArgs,
  gatewayEnv,
  objectName,
  STATE_DIR,
} from "../container-profile.ts";

export interface DockerPlanInput {
  workspaceId: string;
  image: string;
  /** The gateway's port inside the container. */
  port: number;
  limits: ContainerLimits;
  /**
   * Reef runs in a container itself and joins the workspace's network: the
   * port is then not published and the network lets its two members talk.
   */
  reefInContainer?: boolean;
}

/** What the Docker driver creates for one workspace, as Engine API request bodies. */
export interface DockerPlan {
  network: {
    Name: string;
    /** Engine 20.10 creates a second network of the same name unless asked not to. */
    CheckDuplicate: true;
    Driver: "bridge";
    Internal: boolean;
    Labels: Record<string, string>;
    Options: Record<string, string>;
  };
  volume: { Name: string; Labels: Record<string, string> };
  container: {
    name: string;
    Image: string;
    User: string;
    Entrypoint: string[];
    Cmd: string[];
    Env: string[];
    Labels: Record<string, string>;
    ExposedPorts: Record<string, Record<string, never>>;
    HostConfig: {
      ReadonlyRootfs: true;
      CapDrop: ["ALL"];
      SecurityOpt: string[];
      Privileged: false;
      Init: true;
      Memory: number;
      MemorySwap: number;
      NanoCpus: number;
      PidsLimit: number;
      IpcMode: "private";
      NetworkMode: string;
      PortBindings: Record<string, { HostIp: string; HostPort: string }[]>;
      ExtraHosts: string[];
      Mounts: {
        Type: "volume";
        Source: string;
        Target: string;
        ReadOnly: boolean;
        VolumeOptions: { NoCopy: true };
      }[];
      Tmpfs: Record<string, string>;
      RestartPolicy: { Name: "no" };
    };
  };
}

/**
 * The containers, network and volume of one workspace's gateway. Pure: unit
 * tests pin the hardening (non-root, no capabilities, no-new-privileges, read-only
 * root, limits, a network of its own, the port published on loopback only, no
 * host paths and never the Docker socket).
 */
export function buildDockerPlan(input: DockerPlanInput): DockerPlan {
  const name = objectName(input.workspaceId);
  const labels = { "dev.reef.managed": "true", "dev.reef.workspace": input.workspaceId };
  const portKey = `${input.port}/tcp`;
  const memory = input.limits.memoryMb * 1024 * 1024;
  const inContainer = input.reefInContainer === true;
  return {
    network: {
      Name: name,
      CheckDuplicate: true,
      Driver: "bridge",
      // Needs egress to LLM vendors. Only the gateway (and a containerised Reef,
      // which must reach it) is ever on this network.
      Internal: false,
      Labels: labels,
      Options: { "com.docker.network.bridge.enable_icc": inContainer ? "true" : "false" },
    },
    volume: { Name: `${name}-state`, Labels: labels },
    container: {
      name,
      Image: input.image,
      User: `${GATEWAY_UID}:${GATEWAY_UID}`,
      Entrypoint: GATEWAY_ENTRYPOINT,
      Cmd: gatewayArgs(input.port),
      Env: Object.entries(gatewayEnv()).map(([k, v]) => `${k}=${v}`),
      Labels: labels,
      ExposedPorts: { [portKey]: {} },
      HostConfig: {
        ReadonlyRootfs: true,
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges:true"],
        Privileged: false,
        Init: true,
        Memory: memory,
        MemorySwap: memory,
        NanoCpus: Math.round(input.limits.cpus * 1e9),
        PidsLimit: input.limits.pids,
        IpcMode: "private",
        NetworkMode: name,
        // An ephemeral host port, on loopback only: Reef is the only client. A
        // containerised Reef reaches it over the network instead: nothing is published.
        PortBindings: inContainer ? {} : { [portKey]: [{ HostIp: "127.0.0.1", HostPort: "" }] },
        // A Reef on the host is reached at host.docker.internal (its callback URL).
        ExtraHosts: ["host.docker.internal:host-gateway"],
        // The driver owns the volume's content and ownership (see claimVolume): nothing is copied from the image.
        Mounts: [
          {
            Type: "volume",
            Source: `${name}-state`,
            Target: STATE_DIR,
            ReadOnly: false,
            VolumeOptions: { NoCopy: true },
          },
        ],
        Tmpfs: { "/tmp": "rw,noexec,nosuid,nodev,size=268435456" },
        RestartPolicy: { Name: "no" },
      },
    },
  };
}
