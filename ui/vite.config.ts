import { defineConfig } from 'vite';

// Tauri serves `dist/` from its own protocol; relative paths keep it working from file and test servers too.
export default defineConfig({
  base: './',
  clearScreen: false,
  server: { port: 1420, strictPort: true },
  build: {
    outDir: 'dist',
    target: 'es2022',
    emptyOutDir: true,
    chunkSizeWarningLimit: 200,
    // WebKitGTK under tauri:// never fires load events for Vite's preload links, which leaves
    // dynamic imports pending forever; the app has only the fake bridge as a lazy chunk anyway.
    modulePreload: false,
  },
});
