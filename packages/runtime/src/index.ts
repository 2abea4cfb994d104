export { EMBEDDING_ENV, GATEWAY_NODE_ENV, imageOpenclawVersion } from "./container-profile.ts";
export { DockerDriver, type DockerDriverOptions } from "./docker/docker-driver.ts";
export { buildDockerPlan, type DockerPlan, type DockerPlanInput } from "./docker/docker-spec.ts";
export {
  GatewayIntegrityError,
  type JsonObject,
  type JsonValue,
  LLM_PROXY_PATH,
  MCP_PROXY_PATH,
  type RuntimeDriver,
  type RuntimeHandle,
  type RuntimeOutbound,
  type RuntimeSpec,
  type RuntimeStatus,
} from "./driver.ts";
export { type GatewayApprovalDecision, type ResolveOutcome, resolveGatewayApproval } from "./gateway-approvals.ts";
export { closeGatewayChannels } from "./gateway-channel.ts";
export {
  type ChatStreamEvent,
  type ChatTurnRequest,
  GatewayRequestError,
  streamChatTurn,
} from "./gateway-chat-client.ts";
export { endpointSocket, gatewayFetch, gatewayTarget, unixEndpoint } from "./gateway-endpoint.ts";
export { deleteGatewaySessions, type GatewaySessionTarget, gatewayRequest } from "./gateway-session-client.ts";
export {
  type GatewayApprovalDecisionSeen,
  type GatewayApprovalEvent,
  type GatewayToolStep,
  type GatewayTurnEvent,
  type GatewayTurnRequest,
  streamGatewayTurn,
} from "./gateway-ws-chat.ts";
export { KubernetesDriver, type KubernetesDriverOptions } from "./kubernetes/kubernetes-driver.ts";
export { buildKubernetesPlan, type KubernetesPlanInput } from "./kubernetes/pod-spec.ts";
export {
  type AgentInput,
  agentExec,
  type ConnectorInput,
  type ExecPolicy as GatewayExecPolicy,
  type GatewayConfigInput,
  type GatewaySettings,
  HOST_TOOLS,
  type ProviderInput,
  renderGatewayConfig,
  withoutHostTools,
} from "./openclaw-config.ts";
export {
  checkMcpServersDir,
  GATEWAY_PATH,
  type McpServersDirRules,
  sandboxCommandProblem,
} from "./process/mcp-servers-dir.ts";
export { installedOpenclawVersion, openclawEntry } from "./process/openclaw-install.ts";
export { ProcessDriver, type ProcessDriverOptions } from "./process/process-driver.ts";
export { runtimeUserName } from "./process/runtime-users.ts";
export { describeSandbox, probeSandbox, SANDBOX_FIX, type SandboxProbe } from "./process/sandbox-probe.ts";
