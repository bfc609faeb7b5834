// POST /checkout on API Gateway (HTTP API, payload v2) -> Lambda.
//
// Two third-party calls, each through its own circuit breaker:
// - a Stripe-like payments API: no fallback (we cannot pretend a charge happened); when its
//   circuit is open the handler answers 503 with Retry-After at once instead of making the
//   client wait for a dead dependency; card declines (4xx) are not outages and do not count.
// - a weather-like API: nice to have; a fallback answers while it is down or slow.
// The breakers live at module scope, so they survive across invocations of one Lambda
// environment (and a frozen environment wakes up with correct state: breakwater has no
// timers). Metrics go to CloudWatch as Embedded Metric Format on stdout: no API call.
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { CircuitBreaker, CircuitBreakerOpenError, emitEmf } from 'breakwater'

const PAYMENTS_API = process.env.PAYMENTS_API_URL ?? 'https://api.stripe.com'
const WEATHER_API = process.env.WEATHER_API_URL ?? 'https://api.weather.example'
const NAMESPACE = process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'Checkout'

export interface Forecast { city: string; temperatureC: number | null; stale: boolean }
export interface PaymentIntent { id: string; status: string; amount: number; currency: string }
interface CheckoutRequest { amount: number; currency: string; city: string }

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message)
    this.name = 'HttpError'
  }
}

async function callJson<T>(url: string, init: RequestInit & { signal: AbortSignal }): Promise<T> {
  const res = await fetch(url, init)
  if (!res.ok) throw new HttpError(res.status, `${init.method ?? 'GET'} ${url}: HTTP ${res.status}`)
  return (await res.json()) as T
}

const payments = new CircuitBreaker({
  name: 'payments',
  failureThreshold: 0.5,
  minimumRequests: 5,
  timeout: 5_000,
  resetTimeout: 30_000,
  // a declined card or a bad request is the caller's problem, not an outage
  isFailure: (err) => !(err instanceof HttpError && err.status >= 400 && err.status < 500),
})

const weather = new CircuitBreaker<Forecast>({
  name: 'weather',
  failureThreshold: 0.5,
  minimumRequests: 3,
  timeout: 1_000,
  resetTimeout: 60_000,
  fallback: () => ({ city: 'unknown', temperatureC: null, stale: true }),
})

function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }
}

function parse(event: APIGatewayProxyEventV2): CheckoutRequest | null {
  try {
    const raw = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : event.body ?? ''
    const b = JSON.parse(raw) as Partial<CheckoutRequest>
    if (typeof b.amount !== 'number' || !(b.amount > 0) || typeof b.currency !== 'string' || typeof b.city !== 'string') return null
    return { amount: b.amount, currency: b.currency, city: b.city }
  } catch {
    return null
  }
}

export const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
  try {
    const req = parse(event)
    if (!req) return json(400, { error: 'expected a JSON body { amount, currency, city }' })

    const forecast = weather.execute((signal) =>
      callJson<Forecast>(`${WEATHER_API}/v1/forecast?city=${encodeURIComponent(req.city)}`, { signal }))
    const intent = await payments.execute((signal) =>
      callJson<PaymentIntent>(`${PAYMENTS_API}/v1/payment_intents`, {
        method: 'POST',
        signal,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'idempotency-key': event.requestContext.requestId },
        body: new URLSearchParams({ amount: String(req.amount), currency: req.currency }).toString(),
      }))
    return json(200, { paymentIntent: intent.id, status: intent.status, forecast: await forecast })
  } catch (err) {
    if (err instanceof CircuitBreakerOpenError) {
      const retryAfter = Math.ceil((err.retryAfterMs ?? 30_000) / 1000)
      return json(503, { error: 'payments are unavailable, try again later', circuit: err.circuit }, { 'retry-after': String(retryAfter) })
    }
    if (err instanceof HttpError && err.status < 500) return json(402, { error: 'payment declined' })
    console.error('checkout failed:', err)
    return json(502, { error: 'payment provider error' })
  } finally {
    // one EMF line per circuit and metric group, at the end of every invocation
    emitEmf({ namespace: NAMESPACE })
  }
}
