/// <reference types="vitest/config" />
import { defineConfig } from 'vite';

// Tauri serves ui/dist from its own protocol: relative URLs, no remote content, and a
// target WebKitGTK (Safari-family) understands.
export default defineConfig({
  base: './',
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: ['es2021', 'safari15'],
    // No inline preload polyfill: the app's CSP is `default-src 'self'`.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.ts'],
    restoreMocks: true,
    // The 1,000-row tests build real DOM in jsdom: seconds, not milliseconds.
    testTimeout: 30_000,
  },
});
