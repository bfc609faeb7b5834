// breakwater/middy: a Middy middleware that guards the handler with a breaker.
import type { CircuitBreaker, LambdaGuardOptions } from './index.js'

/** The part of Middy's request the middleware reads and writes. */
export interface MiddyRequestLike<TEvent = any, TResult = any, TContext = any> {
  event: TEvent
  context: TContext
  response: TResult | null | undefined
  error: unknown
}

export interface CircuitBreakerMiddleware<TEvent = any, TResult = any, TContext = any> {
  name: 'breakwater'
  /** Rejects fast while the circuit is OPEN: answers with the fallback's response (the handler does not run). */
  before: (request: MiddyRequestLike<TEvent, TResult, TContext>) => Promise<TResult | undefined>
  /** Records the handler's success. */
  after: (request: MiddyRequestLike<TEvent, TResult, TContext>) => Promise<void>
  /** Records the handler's failure; the fallback, if any, answers. */
  onError: (request: MiddyRequestLike<TEvent, TResult, TContext>) => Promise<void>
  /** The breaker guarding the handler. */
  readonly breaker: CircuitBreaker<any>
}

/** Guards a Middy handler with a breaker; use it first, so it guards everything after it. */
export declare function circuitBreakerMiddleware<TEvent = any, TResult = any, TContext = any>(
  options: LambdaGuardOptions<TEvent, TResult, TContext>,
): CircuitBreakerMiddleware<TEvent, TResult, TContext>
