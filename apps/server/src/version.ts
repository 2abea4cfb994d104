import pkg from "../package.json" with { type: "json" };

/** The running Reef version, from the server package. */
export const REEF_VERSION: string = pkg.version;
