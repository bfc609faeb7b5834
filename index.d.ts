// Type definitions for breakwater: a circuit breaker for Node.js with a Rust core.

/** The state of a circuit. Both a type and a value: `CircuitState.OPEN === 'OPEN'`. */
export type CircuitState = 'CLOSED' | 'OPEN' | 'HALF_OPEN'
export declare const CircuitState: Readonly<{ CLOSED: 'CLOSED'; OPEN: 'OPEN'; HALF_OPEN: 'HALF_OPEN' }>

/** Which recent calls the tripping rules look at. */
export type WindowOptions =
  | {
      /** The calls of the last `durationMs`, in `buckets` buckets that age by elapsed time. */
      type: 'time'
      /** Length of the window in ms. Default 60 000. */
      durationMs?: number
      /** Number of buckets (resolution of aging). Default 10. */
      buckets?: number
    }
  | {
      /** The last `size` recorded calls. */
      type: 'count'
      /** Number of calls the window holds (1 – 1 000 000). */
      size: number
    }

/** Counts handed to a `shouldTrip` predicate after each recorded outcome. */
export interface TripCounts {
  /** Calls in the window. */
  calls: number
  failures: number
  successes: number
  slowCalls: number
  consecutiveFailures: number
  consecutiveSuccesses: number
}

/** Anything with console's shape: `info` for transitions, `warn` for OPEN, `error` for misbehaving hooks. */
export interface Logger {
  info?(message: string): void
  warn?(message: string): void
  error?(message: string): void
  log?(message: string): void
}

/** The numeric options: part of a circuit's identity (breakers of one name must agree on them). */
export interface CircuitNumericOptions {
  /**
   * Opens when failures / calls in the window reach this fraction, in (0, 1]. 0.5 = 50%.
   * A value above 1 is an error: to open after N failures in a row use `consecutiveFailures`.
   * Default 0.5 (or `CIRCUIT_BREAKER_FAILURE_THRESHOLD`).
   */
  failureThreshold?: number
  /**
   * The rate rules apply only once the window holds at least this many calls. With a count
   * window the effective minimum is `min(minimumRequests, size)`. Default 10
   * (or `CIRCUIT_BREAKER_MINIMUM_REQUESTS`).
   */
  minimumRequests?: number
  /** Opens after this many consecutive failures, whatever the rate. 0 = off (default). */
  consecutiveFailures?: number
  /** A call that takes longer than this (ms) counts as slow. 0 = off (default). */
  slowCallDurationMs?: number
  /**
   * Opens when slow calls / calls reach this fraction in (0, 1] (with at least
   * `minimumRequests` calls). Needs `slowCallDurationMs`. 0 = off (default).
   */
  slowCallRateThreshold?: number
  /**
   * Per-call timeout in ms; 0 = none. On timeout the action's `signal` is aborted and the call
   * rejects with `CircuitBreakerTimeoutError` (or resolves with the fallback's value).
   * Fires at most ~10 ms late. Default 30 000 (or `CIRCUIT_BREAKER_TIMEOUT`).
   */
  timeout?: number
  /** How long (ms) the circuit stays OPEN before it lets a probe through. Default 60 000 (or `CIRCUIT_BREAKER_RESET_TIMEOUT`). */
  resetTimeout?: number
  /**
   * Backs off the open period after failed probes: the first open period is `resetTimeout`;
   * each re-open after a failed probe (or a `halfOpenTimeout`) multiplies the previous period
   * by `multiplier`, capped at `maxMs`; closing resets it. Off by default. Kept in the shared
   * circuit, so every thread (and, through snapshots, the fleet) sees the same `nextAttemptAt`.
   */
  resetBackoff?: ResetBackoff | null
  /** At most this many probe calls in flight while HALF_OPEN; others are rejected. Default 1. */
  halfOpenMaxRequests?: number
  /** This many consecutive probe successes close the circuit. Default 1. */
  successThreshold?: number
  /**
   * Re-opens the circuit when no probe settled this long (ms) after entering HALF_OPEN (or
   * after the last probe settled). 0 = off (default; or `CIRCUIT_BREAKER_HALF_OPEN_TIMEOUT`).
   */
  halfOpenTimeout?: number
  /** The window. Default `{ type: 'time', durationMs: 60_000, buckets: 10 }`. */
  window?: WindowOptions
}

/** Options of `new CircuitBreaker(options)`. */
/** `resetBackoff`: resilience4j's wait-interval function, cockatiel's `halfOpenAfter` backoff. */
export interface ResetBackoff {
  /** Each re-open after a failed probe multiplies the previous open period by this (1–1000). Default 2. */
  multiplier?: number
  /** No open period is longer (ms; at least `resetTimeout`). Default 10 × `resetTimeout`. */
  maxMs?: number
  /** A fraction 0–1: each period is spread randomly by up to this much of itself, never past `maxMs`. Default 0. */
  jitter?: number
}

export interface CircuitBreakerOptions<TFallback = unknown> extends CircuitNumericOptions {
  /** Required: the circuit's identity in the process-wide registry (shared by worker threads). */
  name: string
  /**
   * Called on rejection (circuit open), failure and timeout — never on an ignored error.
   * Its value resolves `execute`; if it throws, `execute` rejects with what it threw.
   * Declare the `error` parameter only if you use it: a fallback without one skips building
   * the error on the open-circuit path.
   */
  fallback?: (error: unknown) => TFallback | PromiseLike<TFallback>
  /**
   * Decides whether an error counts as a failure. Return false to ignore it (a card decline
   * is not an outage): not counted, re-thrown unchanged, no fallback. Default: every error counts.
   */
  isFailure?: (error: unknown) => boolean
  /** A custom tripping rule, asked after each recorded outcome; true opens the circuit. */
  shouldTrip?: (counts: TripCounts) => boolean
  /** Same as `on('stateChange', listener)`. */
  onStateChange?: (event: StateChangeEvent) => void
  /**
   * Where transitions are logged, one line each (OPEN at `warn`, others at `info`).
   * Default `console`; `null` silences it.
   */
  logger?: Logger | null
  /**
   * false: metrics-only (resilience4j's METRICS_ONLY): a pass-through that never rejects and
   * still records its outcomes in the stats, but never changes the circuit's state (no
   * transition, event or log line follows from its outcomes, here, in another thread or
   * through a store). Default true (or `CIRCUIT_BREAKER_ENABLED`). Belongs to this instance.
   */
  enabled?: boolean
  /** A snapshot from `toJSON()` to start the circuit in (used when this call creates the circuit). */
  initialState?: Pick<CircuitSnapshot, 'state'> & Partial<CircuitSnapshot>
  /**
   * Shares the circuit beyond this process: `fileStore({ dir })`, `redisStore({ url })`, or
   * any `CircuitStore`. The hot path never waits on it; see the README's "Shared state".
   */
  store?: CircuitStore | null
}

/** What `toJSON()` returns and a store keeps: JSON-serialisable. */
export interface CircuitSnapshot {
  name: string
  state: CircuitState
  /** OPEN by `open()` without a duration: stays OPEN until closed by hand. */
  forced: boolean
  /** Epoch ms when an OPEN circuit lets a probe through, or null. */
  nextAttemptAt: number | null
  /** Epoch ms of the transition into `state`: stores keep the newest (last writer wins). */
  stateChangedAt: number
  /** Epoch ms when the snapshot was taken. */
  savedAt: number
}

/**
 * A shared store: any object with `load` and `save` (sync or async). `tryAcquireProbe` and
 * `releaseProbe`, when present, make HALF_OPEN probes fleet-wide: at most `max` run at once
 * across every instance. The breaker never lets a store's error reach a call.
 */
export interface CircuitStore {
  /** The stored snapshot of circuit `name`, or null. */
  load(name: string): CircuitSnapshot | null | PromiseLike<CircuitSnapshot | null>
  /**
   * Stores `snapshot`. A store with versions saves it only if it still holds `expectedVersion`
   * (or `force`: an operator's decision) and answers `{ saved, version }` with the version it
   * assigned; one without versions keeps the newest `stateChangedAt`.
   */
  save(name: string, snapshot: CircuitSnapshot, options?: { expectedVersion: number; force: boolean }): unknown
  /**
   * One of `max` fleet-wide probe permits, expiring after `ttlMs`; false if none is free, or if
   * the store holds a forced OPEN or an OPEN newer than `version` (the decision the asker follows).
   */
  tryAcquireProbe?(name: string, options: { ttlMs: number; max: number; version: number }): boolean | PromiseLike<boolean>
  /** Gives back a permit this store instance holds (a no-op if it holds none). */
  releaseProbe?(name: string): unknown
  /** ms between syncs (default 1000). */
  syncIntervalMs?: number
  /** Longest wait for the initial load and for a probe permit, in ms (default 250). */
  loadTimeoutMs?: number
}

export interface FileStoreOptions {
  /** A directory of breakwater's own (created if missing): one JSON file per circuit. */
  dir: string
  /** ms between syncs with the files (default 1000). */
  syncIntervalMs?: number
  /** Longest wait for a probe permit, in ms (default 250). */
  loadTimeoutMs?: number
}

/** Exactly one of `url` and `client`. */
export type RedisStoreOptions = RedisStoreCommonOptions & (
  | {
      /** `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). */
      url: string
      client?: never
    }
  | {
      /**
       * Your connected ioredis, iovalkey or node-redis (`redis` v4+) client, or their Cluster
       * client: TLS, ACL users, Sentinel, Cluster and IAM auth as you configured them.
       */
      client: object
      url?: never
    })

export interface RedisStoreCommonOptions {
  /** Key and channel prefix (default 'breakwater:'). */
  prefix?: string
  /** ms between syncs: counts merged, state read (default 1000). Transitions are pushed at once. */
  syncIntervalMs?: number
  /** Longest wait for the initial load and for a probe permit, in ms (default 250). */
  loadTimeoutMs?: number
  /** TTL of a circuit's state key, renewed by every save (default 7 days). */
  stateTtlMs?: number
  /** Default 1000 ms each. */
  connectTimeoutMs?: number
  commandTimeoutMs?: number
}

/** State kept in files in `dir`: survives restarts, shared by the processes of one host. */
export declare function fileStore(options: FileStoreOptions): CircuitStore & { kind: 'file'; dir: string }
/** State shared by a fleet through Redis. */
export declare function redisStore(options: RedisStoreOptions): CircuitStore & { kind: 'redis'; close(): void }

export interface DynamoDbStoreOptions {
  /** Your DynamoDBClient (AWS SDK v3). */
  client: { send(command: any): Promise<any> }
  /** A table with string partition key `pk` and TTL on `ttl` (see the README). */
  tableName: string
  /**
   * The module of `@aws-sdk/client-dynamodb` (`require('@aws-sdk/client-dynamodb')`) whose
   * commands are sent through `client`. Needed when the SDK is bundled into your code; by
   * default breakwater requires it from your application.
   */
  commands?: object
  /** Prefix of every item's `pk` (default ''): several stores can share a table. */
  keyPrefix?: string
  /** Aggregate counts across the fleet (default false: a healthy circuit writes nothing). */
  aggregateCounts?: boolean
  /** ms between syncs (default 1000). */
  syncIntervalMs?: number
  /** Longest wait for the initial load and for a probe permit, in ms (default 250). */
  loadTimeoutMs?: number
  /** TTL of a circuit's item, renewed by every save (default 7 days). */
  stateTtlMs?: number
}

/** State shared by a fleet through DynamoDB. */
export declare function dynamoDbStore(options: DynamoDbStoreOptions): CircuitStore & { kind: 'dynamodb' }

/** Per-call options of `execute`. */
export interface ExecuteOptions {
  /** Run the action without the breaker (health checks): nothing is recorded. */
  bypass?: boolean
  /** This call's timeout in ms (0 = none), instead of the breaker's. */
  timeout?: number
  /**
   * Retry through the breaker: every attempt is a breaker call (counted, timed out, and
   * rejected at once by an OPEN circuit, which ends the retries); the fallback answers once,
   * after the last attempt. The action then gets `(signal, attempt)`.
   */
  retry?: RetryOptions
  /**
   * The caller's `AbortSignal` (a Lambda's remaining-time budget, a cancelled HTTP request).
   * Aborting it aborts the action's signal and rejects the call at once with the signal's
   * reason, even if the action ignores its signal. Already aborted: the action does not run
   * and nothing is counted. A call cancelled while running counts in `ignoredCount` (neither
   * success nor failure), runs no fallback, and frees its half-open probe slot.
   */
  signal?: AbortSignal
}

/** Options of `wrap`. */
export interface WrapOptions extends ExecuteOptions {
  /**
   * Call `fn` with the call's `AbortSignal` as one more argument, after the caller's:
   * `breaker.wrap((id: string, signal: AbortSignal) => fetch(url + id, { signal }), { passSignal: true })`
   * gives `(id: string) => Promise<Response>`. The signal is aborted when the call times out.
   */
  passSignal?: boolean
}

/** Exponential backoff between attempts. */
export interface BackoffOptions {
  /** The first wait's cap, in ms. Default 100. */
  initialMs?: number
  /** No wait is longer, in ms. Default 10 000. */
  maxMs?: number
  /** Each wait's cap is the previous one's times this (>= 1). Default 2. */
  multiplier?: number
  /** 'full': each wait is uniform in [0, cap] (AWS's "full jitter"); 'none': exactly the cap. Default 'full'. */
  jitter?: 'full' | 'none'
}

/** What `onRetry` gets before each wait. */
export interface RetryEvent {
  /** The attempt that just failed (from 1); the next one is `attempt + 1`. */
  attempt: number
  error: unknown
  /** How long the wait before the next attempt is, in ms. */
  delayMs: number
}

/** The part of a Lambda context that retry reads. */
export interface LambdaContextLike {
  getRemainingTimeInMillis(): number
}

export interface RetryOptions {
  /** Retries after the first attempt (2 = at most 3 attempts). Default 3. */
  retries?: number
  backoff?: BackoffOptions
  /** Whether an error is worth another attempt (default: every failure). false ends the retries with that error unchanged. */
  retryOn?: (error: unknown) => boolean
  /** Called before each wait. */
  onRetry?: (event: RetryEvent) => void
  /** The caller's signal: a wait never outlasts it (the call rejects with its reason). */
  signal?: AbortSignal
  /** A Lambda context: no wait starts that would end less than 100 ms before the invocation's deadline. */
  context?: LambdaContextLike
}

/**
 * Retries `action` with exponential backoff. Rejects with `RetryExhaustedError` when the
 * attempts (or the Lambda's remaining time) run out; with the error itself when `retryOn`
 * returns false or it is a `CircuitBreakerOpenError` (retrying cannot help before it
 * half-opens); with the signal's reason when the signal aborts.
 */
export declare function retry<T>(action: (signal: AbortSignal, attempt: number) => T | PromiseLike<T>, options?: RetryOptions): Promise<T>

/** Payload of `stateChange`, `open`, `halfOpen` and `close`. */
export interface StateChangeEvent {
  name: string
  from: CircuitState
  to: CircuitState
  /**
   * Why: 'failureRate' | 'consecutiveFailures' | 'slowCallRate' | 'shouldTrip' | 'resetTimeout' |
   * 'probeSucceeded' | 'probeFailed' | 'halfOpenTimeout' | 'forcedOpen' | 'manualOpen' |
   * 'manualClose' | 'manualHalfOpen' | 'reset' | 'restored' | 'store' (another instance's
   * decision, read from the shared store) | 'fleetFailureRate' | 'fleetSlowCallRate' (the
   * rate over every instance's counts, from the shared store)
   */
  reason: string
  /** Epoch ms of the transition. */
  at: number
}

export interface BreakerEvents {
  stateChange: StateChangeEvent
  open: StateChangeEvent
  halfOpen: StateChangeEvent
  close: StateChangeEvent
  success: { name: string }
  failure: { name: string; error: unknown; timeout: boolean }
  /** `error` is null when a parameterless fallback made building it unnecessary. */
  reject: { name: string; error: CircuitBreakerOpenError | null }
  timeout: { name: string; timeoutMs: number }
  fallback: { name: string; error: unknown }
}

/** What `getStats()` returns: a plain, JSON-serialisable object. */
export interface CircuitBreakerStats {
  name: string
  state: CircuitState
  enabled: boolean
  /** successCount + failureCount + rejectionCount + ignoredCount, since creation or reset. */
  totalRequests: number
  successCount: number
  /** Failures, timeouts included. */
  failureCount: number
  /** Calls not run because the circuit was OPEN or HALF_OPEN with its probe slots taken. */
  rejectionCount: number
  timeoutCount: number
  /** Times the fallback ran. */
  fallbackCount: number
  /** Errors for which `isFailure` returned false. */
  ignoredCount: number
  slowCallCount: number
  /** The window the rules look at. */
  window: { calls: number; failures: number; successes: number; slowCalls: number }
  /** Percent (0–100) of the window's calls that failed: what `failureThreshold` is compared to. */
  failureRate: number
  /** Percent (0–100) of the window's calls that were slow. */
  slowCallRate: number
  consecutiveFailures: number
  consecutiveSuccesses: number
  /** Latency over the window in ms, from a fixed-size histogram (±9%) of 1 in 16 calls (all calls with `slowCallDurationMs`). */
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number }
  /** Epoch ms, or null. */
  lastFailureAt: number | null
  /** Epoch ms (to the window's bucket resolution), or null. */
  lastSuccessAt: number | null
  /** Epoch ms. */
  stateChangedAt: number
  /** Epoch ms when an OPEN circuit lets a probe through; null otherwise (and when forced open). */
  nextAttemptAt: number | null
  /** ms until `nextAttemptAt`; 0 in HALF_OPEN; null when CLOSED or forced open. */
  retryAfterMs: number | null
  /**
   * null without a store. `healthy: false` means the last exchange with the store failed and
   * the breaker runs on local state; `fleetWindow` is every instance's window (stores that
   * merge counts, like Redis), as of `lastSyncAt`.
   */
  store: null | {
    kind: string
    healthy: boolean
    lastError: string | null
    lastSyncAt: number | null
    fleetWindow: { calls: number; failures: number; slowCalls: number } | null
  }
  failureThreshold: number
  minimumRequests: number
  timeout: number
  resetTimeout: number
}

export declare class CircuitBreaker<TFallback = never> {
  /** @throws TypeError | RangeError naming the option, or an Error if the name exists with other options. */
  constructor(options: CircuitBreakerOptions<TFallback>)
  /** The circuit's name. */
  readonly name: string
  /** 'CLOSED' | 'OPEN' | 'HALF_OPEN'. Reading it may move OPEN to HALF_OPEN. */
  readonly state: CircuitState
  /** false when the breaker is a pass-through. */
  readonly enabled: boolean
  /**
   * Runs `action` through the breaker. Or pass an already-created promise: the breaker
   * cannot prevent that call, but records its outcome and applies timeout and fallback.
   *
   * Which actions get a live `signal`: with `options.signal`, every action (it aborts when the
   * caller's signal does or the call times out). Otherwise, an action that declares a
   * parameter (`(signal) => fetch(url, { signal })`, `action.length > 0`) when the call has a
   * timeout. Any other action gets a shared signal that never aborts (an `AbortController` per
   * call would be paid by every call): `() => …`, `(...args) => …`, and every call without a
   * timeout or `options.signal`.
   * @throws (rejects with) CircuitBreakerOpenError, CircuitBreakerTimeoutError, or the action's error
   */
  execute<T>(action: (signal: AbortSignal, attempt: number) => T | PromiseLike<T>, options: ExecuteOptions & { retry: RetryOptions }): Promise<T | TFallback>
  execute<T>(action: ((signal: AbortSignal) => T | PromiseLike<T>) | PromiseLike<T>, options?: ExecuteOptions): Promise<T | TFallback>
  /**
   * A function with fn's signature that runs through `execute` (with `options` for every call, e.g. `{ retry }`). With `{ passSignal: true }`,
   * `fn` gets the call's `AbortSignal` as its last argument and the returned function takes
   * the arguments before it.
   */
  wrap<A extends unknown[], R>(fn: (...args: [...A, AbortSignal]) => R | PromiseLike<R>, options: WrapOptions & { passSignal: true }): (...args: A) => Promise<R | TFallback>
  wrap<A extends unknown[], R>(fn: (...args: A) => R | PromiseLike<R>, options?: WrapOptions & { passSignal?: false }): (...args: A) => Promise<R | TFallback>
  getStats(): CircuitBreakerStats
  /** Forces OPEN until close()/halfOpen()/reset(); with `durationMs`, opens like a trip and half-opens after it. */
  open(durationMs?: number): void
  close(): void
  halfOpen(): void
  /** CLOSED, empty window, zeroed counters. */
  reset(): void
  /** Subscribes; returns the function that unsubscribes. */
  on<E extends keyof BreakerEvents>(event: E, listener: (payload: BreakerEvents[E]) => void): () => void
  /** Removes the circuit from the registry; this breaker (and others of its name) stop working. */
  dispose(): void
  /** The circuit's state as a snapshot (what stores keep; `initialState` takes it back). */
  toJSON(): CircuitSnapshot
}

/** Thrown (or handed to the fallback) when the circuit rejects a call without running it. */
export declare class CircuitBreakerOpenError extends Error {
  constructor(circuit: string, state: 'OPEN' | 'HALF_OPEN', retryAfterMs: number | null)
  readonly name: 'CircuitBreakerOpenError'
  /** The circuit's name. */
  circuit: string
  state: 'OPEN' | 'HALF_OPEN'
  /** ms until a probe may run; 0 in HALF_OPEN; null when forced open. */
  retryAfterMs: number | null
}

/** Thrown (or handed to the fallback) when a call exceeds its timeout. */
export declare class CircuitBreakerTimeoutError extends Error {
  constructor(circuit: string, timeoutMs: number, state: string)
  readonly name: 'CircuitBreakerTimeoutError'
  circuit: string
  state: string
  timeoutMs: number
}

/** A retried call ran out of attempts, or of Lambda time for another one. */
export declare class RetryExhaustedError extends Error {
  constructor(attempts: number, errors: unknown[], why?: string)
  readonly name: 'RetryExhaustedError'
  /** How many attempts ran. */
  attempts: number
  /** Every attempt's error, in order. */
  errors: unknown[]
  /** The last attempt's error. */
  cause: unknown
}

/** Every registered circuit's stats, by name (all threads of the process). */
export declare function getAllCircuitBreakerStats(): Record<string, CircuitBreakerStats>
/** The breaker registered under `name` (attached to this thread if it was made in another), or undefined. */
export declare function getCircuitBreaker(name: string): CircuitBreaker<unknown> | undefined
/** Every circuit back to CLOSED with an empty window and zeroed counters; all stay registered. */
export declare function resetAllCircuitBreakers(): void
export declare function getHealthSummary(): {
  total: number
  closed: number
  open: number
  halfOpen: number
  health: 'healthy' | 'degraded'
}
/** Process-wide defaults for breakers created afterwards (explicit options still win). */
export declare function configure(defaults: CircuitNumericOptions & { enabled?: boolean; logger?: Logger | null; store?: CircuitStore | null }): void
/** The preset for third-party APIs: 50% of at least 10 calls, 30 s timeout, 60 s reset. */
export declare function createExternalServiceCircuitBreaker<TFallback = never>(
  name: string,
  fallback?: (error: unknown) => TFallback | PromiseLike<TFallback>,
  options?: Omit<CircuitBreakerOptions<TFallback>, 'name' | 'fallback'>,
): CircuitBreaker<TFallback>

/** Options of a preset: spread them and add a name (`{ ...presets.llm, name: 'openai' }`). */
export type CircuitPreset = Readonly<Omit<CircuitBreakerOptions<never>, 'name' | 'fallback'>>

/** Options for the dependencies wrapped most; plain frozen objects to spread and override. */
export declare const presets: {
  /** LLM APIs: 120 s timeout, 80% of calls over 60 s opens too, 5 calls decide, 4xx (but 408/409/425/429) ignored. */
  readonly llm: CircuitPreset
  /** Databases: 10 s timeout, 5 failures in a row open, 15 s open; SQLSTATE 22/23/42 (the query's fault) ignored. */
  readonly database: CircuitPreset
  /** Caches: 250 ms timeout, 5 s open, 10 s window. */
  readonly cache: CircuitPreset
}

// ---- Lambda

/**
 * Options of `withCircuitBreaker` and of the Middy middleware: the breaker's options (or
 * `{ breaker }`, an existing one), plus a fallback that answers with the handler's response.
 */
export type LambdaGuardOptions<TEvent = any, TResult = any, TContext = any> =
  (Omit<CircuitBreakerOptions<never>, 'fallback'> | { breaker: CircuitBreaker<any> }) & {
    /** Answers a failed, timed-out or rejected invocation; not an ignored error (isFailure false). */
    fallback?: (error: unknown, event: TEvent, context: TContext) => TResult | PromiseLike<TResult>
    /** Write the breakers' metrics as CloudWatch EMF after each invocation (true, or emitEmf's options). */
    emitEmf?: boolean | EmfOptions
  }

/**
 * Runs an async Lambda handler through a breaker: a handler that throws counts as a failure
 * and its error propagates, or `fallback(error, event, context)` answers.
 */
export declare function withCircuitBreaker<TEvent, TResult, TContext = any>(
  handler: (event: TEvent, context: TContext) => TResult | PromiseLike<TResult>,
  options: LambdaGuardOptions<TEvent, TResult, TContext>,
): ((event: TEvent, context: TContext) => Promise<TResult>) & { readonly breaker: CircuitBreaker<any> }

// ---- metrics

/**
 * Every circuit's metrics in the Prometheus text exposition format (version 0.0.4, valid for
 * `promtool check metrics`), label `name` on every sample:
 * `circuit_breaker_state` (0 closed, 1 half-open, 2 open),
 * `circuit_breaker_calls_total{result="success"|"failure"|"rejected"|"ignored"}`,
 * `circuit_breaker_state_transitions_total{from,to}` (`closed`, `open`, `half_open`),
 * `circuit_breaker_failure_rate` (ratio 0–1), `circuit_breaker_timeouts_total`,
 * `circuit_breaker_fallbacks_total`, `circuit_breaker_slow_calls_total` and the histogram
 * `circuit_breaker_call_duration_seconds` (sampled calls).
 */
export declare const toPrometheus: {
  (): string
  /** 'text/plain; version=0.0.4; charset=utf-8', the Content-Type to serve it with. */
  readonly contentType: string
}

/** The part of a prom-client `Registry` that registerPrometheusMetrics uses. */
export interface PromClientRegistryLike {
  registerMetric(metric: any): void
  removeSingleMetric?(name: string): void
}

/**
 * Adds breakwater's metric families (those of toPrometheus) to a prom-client registry, read
 * at each scrape, so `await register.metrics()` includes them. Idempotent per registry.
 * @returns a function that removes them again
 */
export declare function registerPrometheusMetrics(registry: PromClientRegistryLike): () => void

/** A CloudWatch dimension. */
export interface CloudWatchDimension {
  Name: string
  Value: string
}

/** What breakwater publishes to CloudWatch, per circuit. */
export type CloudWatchMetricName =
  | 'TotalRequests' | 'SuccessCount' | 'FailureCount' | 'RejectionCount' | 'TimeoutCount'
  | 'FallbackCount' | 'IgnoredCount' | 'SlowCallCount' | 'FailureRate' | 'CircuitState'

export interface CloudWatchMetricOptions {
  /** Extra dimensions added to every metric (not Service or State). */
  dimensions?: CloudWatchDimension[]
  /** A subset of the metrics to publish (default: all). */
  metrics?: CloudWatchMetricName[]
}

/** One entry of PutMetricData's MetricData, as breakwater builds it. */
export interface CloudWatchMetricDatum {
  MetricName: CloudWatchMetricName
  Dimensions: CloudWatchDimension[]
  Unit: 'Count' | 'Percent' | 'None'
  Value: number
  Timestamp: Date
}

/**
 * The `MetricData` array for `PutMetricDataCommand`: per circuit, the counts (unit Count,
 * dimension `Service`) as deltas since the previous call of toCloudWatchMetricData or
 * publishToCloudWatch (since creation on the first); `CircuitState` (unit None, dimension
 * `Service`: 0 closed, 1 half-open, 2 open); and `FailureRate` (Percent, dimensions `Service`
 * and `State`) only while the window holds at least the effective minimumRequests. `Service`
 * is the circuit's name, or `cloudWatchDimensionValue(name)` for a name CloudWatch refuses.
 * It may exceed PutMetricData's 1000-metric limit; publishToCloudWatch splits it.
 */
export declare function toCloudWatchMetricData(options?: CloudWatchMetricOptions): CloudWatchMetricDatum[]

export interface PublishToCloudWatchOptions extends CloudWatchMetricOptions {
  /** The CloudWatch namespace (not `AWS/...`). */
  namespace: string
  /**
   * `PutMetricDataCommand` from the same @aws-sdk/client-cloudwatch as the client. Pass it
   * when the SDK is bundled into your handler (esbuild): it works in every layout. Without it,
   * the aggregated `CloudWatch` client's own `putMetricData` is used, else the command of the
   * SDK copy that made the client, looked up where the application's modules are (task root,
   * working directory, entry script, NODE_PATH — never breakwater's own folder); if there is
   * none, the call rejects with a TypeError saying to pass it.
   */
  PutMetricDataCommand?: new (input: any) => any
}

/**
 * Publishes toCloudWatchMetricData's metrics with your own `CloudWatchClient` (breakwater
 * does not depend on the AWS SDK), in requests within PutMetricData's limits (1000 metrics,
 * 1 MB), one after another. Counts of a failed request are published by the next call.
 * @throws (rejects with) an AggregateError of the failed requests' errors
 */
export declare function publishToCloudWatch(
  client: { send(command: any): Promise<unknown> } | { putMetricData(input: any): unknown },
  options: PublishToCloudWatchOptions,
): Promise<{ requests: number; metrics: number }>

export interface EmfOptions extends CloudWatchMetricOptions {
  /** Default: the POWERTOOLS_METRICS_NAMESPACE environment variable, else 'Breakwater'. */
  namespace?: string
  /** Where each line goes (default: process.stdout). */
  write?: (line: string) => void
}

/** A CloudWatch Embedded Metric Format document. */
export interface EmfDocument {
  _aws: {
    Timestamp: number
    CloudWatchMetrics: Array<{
      Namespace: string
      Dimensions: string[][]
      Metrics: Array<{ Name: string; Unit: 'Count' | 'Percent' | 'None' }>
    }>
  }
  [key: string]: unknown
}

/**
 * Writes every circuit's metrics to stdout in CloudWatch Embedded Metric Format, one JSON
 * document per line: the counts (deltas since the previous emitEmf call) and `CircuitState`,
 * dimension `Service`; and `FailureRate` (Percent, dimensions `Service` and `State`) while the
 * window holds at least the effective minimumRequests. Returns the documents written.
 */
export declare function emitEmf(options?: EmfOptions): EmfDocument[]

/**
 * The `Service` dimension value a circuit is published under: the name itself when CloudWatch
 * accepts it (1–1024 printable ASCII characters, not blank), otherwise the name folded to
 * ASCII (accents dropped, other characters `_`, trimmed, cut to fit) + `~` + the first 12 hex
 * digits of the SHA-256 of its UTF-16 code units. Deterministic on every host and version.
 */
export declare function cloudWatchDimensionValue(name: string): string

export interface CloudWatchAlarmOptions {
  namespace: string
  /** Circuit names (default: the circuits registered now; pass them when synthesising a stack). */
  circuits?: string[]
  /** Percent in (0, 100], default 50: the failure-rate alarm fires above it. */
  failureRateThreshold?: number
  /** 10, 30 or a multiple of 60; default 60. */
  periodSeconds?: number
  /** Default 1. */
  evaluationPeriods?: number
  /** Default 'breakwater-'. */
  alarmNamePrefix?: string
  alarmActions?: string[]
  okActions?: string[]
}

/**
 * Two alarms per circuit, as PutMetricAlarm inputs (which are also the Properties of an
 * `AWS::CloudWatch::Alarm`): `<prefix><name>-circuit-open` (CircuitState reached 2) and
 * `<prefix><name>-failure-rate` (FailureRate above the threshold); `<name>` is the published
 * `Service` value (see cloudWatchDimensionValue).
 */
export declare function cloudWatchAlarms(options: CloudWatchAlarmOptions): Array<Record<string, unknown> & { AlarmName: string }>

export interface CloudWatchDashboardOptions {
  namespace: string
  circuits?: string[]
  /** Default: AWS_REGION. */
  region?: string
  /** Default 'breakwater'. */
  dashboardName?: string
  failureRateThreshold?: number
  periodSeconds?: number
}

/** A dashboard of every circuit's calls and failure rate: the PutDashboard input (= AWS::CloudWatch::Dashboard Properties). */
export declare function cloudWatchDashboard(options: CloudWatchDashboardOptions): { DashboardName: string; DashboardBody: string }

/** The alarms and the dashboard as a CloudFormation `Resources` map. */
export declare function cloudFormationResources(
  options: CloudWatchAlarmOptions & CloudWatchDashboardOptions,
): Record<string, { Type: 'AWS::CloudWatch::Alarm' | 'AWS::CloudWatch::Dashboard'; Properties: Record<string, unknown> }>

export interface StatsHandlerOptions {
  /** The bearer token that POST .../reset needs; without it, reset answers 403. */
  resetToken?: string
  /** Where the routes live (default '/stats'). */
  basePath?: string
}

/** The subset of an API Gateway proxy event (REST v1 or HTTP API v2) the handler reads. */
export interface ApiGatewayProxyEventLike {
  httpMethod?: string
  path?: string
  rawPath?: string
  requestContext?: { stage?: string; http?: { method?: string } } & Record<string, unknown>
  headers?: Record<string, string | undefined> | null
}

export interface StatsHandler {
  /**
   * node:http request listener, or Express middleware: answers exactly its own routes (on
   * `req.url`, relative to the mount point) and calls `next()` for every other request.
   */
  (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next?: (err?: unknown) => void): void
  /** API Gateway (Lambda proxy integration) handler. */
  apiGateway(event: ApiGatewayProxyEventLike): Promise<{ statusCode: number; headers: Record<string, string>; body: string; isBase64Encoded: false }>
}

/**
 * An HTTP endpoint over the registry: `GET {basePath}` (all stats and the health summary),
 * `GET {basePath}/{name}`, `POST {basePath}/reset` and `POST {basePath}/{name}/reset`
 * (with `Authorization: Bearer <resetToken>`, compared in constant time). 401 without the
 * token, 404 for an unknown circuit; errors never carry stack traces.
 */
export declare function createStatsHandler(options?: StatsHandlerOptions): StatsHandler

/**
 * The part of an OpenTelemetry `Meter` (from `@opentelemetry/api` 1.3 or later) that
 * registerOpenTelemetry uses: a structural type, so breakwater's types do not need
 * @opentelemetry/api installed. A real `Meter` is assignable to it.
 */
export interface OpenTelemetryMeter {
  createObservableGauge(name: string, options?: { description?: string; unit?: string }): any
  createObservableCounter(name: string, options?: { description?: string; unit?: string }): any
  addBatchObservableCallback(callback: (observableResult: any) => void | Promise<void>, observables: any[]): void
  removeBatchObservableCallback(callback: (observableResult: any) => void | Promise<void>, observables: any[]): void
}

/**
 * Registers every circuit's figures as observable instruments on `meter`, each with the
 * attribute `name`: `circuit_breaker.state` (gauge: 0 closed, 1 half-open, 2 open),
 * `circuit_breaker.calls` (counter, attribute `result`: `success`, `failure`, `rejected`,
 * `ignored`, summing to `totalRequests`) and `circuit_breaker.failure_rate` (gauge, the
 * window's failure rate as a ratio 0–1). Call it once per Meter.
 * @returns a function that unregisters them (the instruments report nothing afterwards)
 */
export declare function registerOpenTelemetry(meter: OpenTelemetryMeter): () => void
