/** A process environment as the manager reads it (process.env, or a test's own). */
export type Env = Record<string, string | undefined>;
