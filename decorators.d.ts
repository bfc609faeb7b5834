// breakwater/decorators: TypeScript 5 standard decorators for class methods.
import type { CircuitBreaker, CircuitBreakerOptions, RetryOptions } from './index.js'

/** A decorated method: an async method (the decorated one returns a promise). */
type AsyncMethod<This, Args extends unknown[], R> = (this: This, ...args: Args) => Promise<R>

/**
 * Runs the method through a breaker: one per decorated method per class, made when the class
 * is defined (or the one given). Written above `@retry`, the whole retried call is one breaker
 * call; written below it, each attempt is.
 */
export declare function circuitBreaker(nameOrOptions: string | CircuitBreakerOptions<any> | CircuitBreaker<any>): <This, Args extends unknown[], R>(
  method: AsyncMethod<This, Args, R>,
  context: ClassMethodDecoratorContext<This, AsyncMethod<This, Args, R>>,
) => AsyncMethod<This, Args, R>

/**
 * Retries the method with exponential backoff. Written above `@circuitBreaker`, it retries
 * through the breaker (each attempt a breaker call; an OPEN circuit ends the retries; the
 * breaker's fallback answers once, after the last attempt).
 */
export declare function retry(options?: Omit<RetryOptions, 'signal' | 'context'>): <This, Args extends unknown[], R>(
  method: AsyncMethod<This, Args, R>,
  context: ClassMethodDecoratorContext<This, AsyncMethod<This, Args, R>>,
) => AsyncMethod<This, Args, R>
