/**
 * `Symbol.asyncDispose` where the runtime has it (for `await using`), else the well-known registry symbol
 * that TypeScript's down-level emit and polyfills use.
 */
export const asyncDispose: typeof Symbol.asyncDispose =
  ((Symbol as { asyncDispose?: symbol }).asyncDispose as typeof Symbol.asyncDispose) ?? (Symbol.for("Symbol.asyncDispose") as typeof Symbol.asyncDispose);
