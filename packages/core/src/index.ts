export { createSystemService, type SystemService } from "./system/system-service.ts";
