/**
 * The HTTP gateway as a module: `import { serve, createServer } from 'flower-native/server'`.
 * A subpath of its own, so importing 'flower-native' does not load fastify.
 */
export { createServer, type ServerOptions } from './app.js';
export { DEFAULT_LIMITS, type ServerLimits } from './limits.js';
export { serve, DEFAULT_HOST, DEFAULT_PORT, type RunningServer, type ServeOptions } from './serve.js';
