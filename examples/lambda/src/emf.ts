import { CircuitBreaker, emitEmf } from 'breakwater'

const weather = new CircuitBreaker({
  name: 'weather',
  timeout: 2_000,
  fallback: () => ({ temperatureC: null, stale: true }),
})

export const handler = async (event: { city?: string }) => {
  try {
    const url = `${process.env.WEATHER_API_URL}/v1/forecast?city=${encodeURIComponent(event.city ?? 'Paris')}`
    return await weather.execute((signal) => fetch(url, { signal }).then((r) => r.json()))
  } finally {
    emitEmf() // namespace: POWERTOOLS_METRICS_NAMESPACE, else 'Breakwater'
  }
}
