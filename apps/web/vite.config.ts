import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  server: {
    proxy: { "/api": "http://127.0.0.1:7420", "/healthz": "http://127.0.0.1:7420", "/readyz": "http://127.0.0.1:7420" },
  },
});
