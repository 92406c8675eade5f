/// <reference types="vitest/config" />
import { fileURLToPath } from "node:url";
import { defineConfig, searchForWorkspaceRoot } from "vite";
import react from "@vitejs/plugin-react";

// @nodeloom/client (clients/typescript) is used from its TypeScript source: no build step or install before
// this one, and the dashboard always compiles against the client of the same checkout.
const nodeloomClient = fileURLToPath(new URL("../clients/typescript/src/index.ts", import.meta.url));

// The API server serves dist/ at "/" and the API at /api/v1 on the same origin.
// In development, `npm run dev` proxies /api to a local server (NODELOOM_API, default :8000).
const apiTarget = process.env.NODELOOM_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  base: "/",
  resolve: {
    alias: { "@nodeloom/client": nodeloomClient },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  server: {
    fs: { allow: [searchForWorkspaceRoot(process.cwd()), fileURLToPath(new URL("../clients/typescript/src", import.meta.url))] },
    proxy: { "/api": { target: apiTarget, changeOrigin: false } },
  },
  test: {
    // Pure modules run in node; files that render or use the DOM opt in with `@vitest-environment jsdom`.
    environment: "node",
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    pool: "threads",
    maxWorkers: 2,
    css: false,
  },
});
