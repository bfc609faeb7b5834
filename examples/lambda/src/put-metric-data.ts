import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch'
import { CircuitBreaker, publishToCloudWatch } from 'breakwater'

const cloudwatch = new CloudWatchClient({})
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
    // your PutMetricDataCommand: works whether the SDK is in your bundle or not
    await publishToCloudWatch(cloudwatch, { namespace: 'Checkout', PutMetricDataCommand })
      .catch((err) => console.warn('breakwater metrics:', err.message))
  }
}
