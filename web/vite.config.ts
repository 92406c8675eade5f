/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The API server serves dist/ at "/" and the API at /api/v1 on the same origin.
// In development, `npm run dev` proxies /api to a local server (NODELOOM_API, default :8000).
const apiTarget = process.env.NODELOOM_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  server: {
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
