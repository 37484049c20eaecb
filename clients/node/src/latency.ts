// ai_result_latency_ms: count, sum and max over every result, percentiles over the most recent ones (a
// bounded window: a client that runs for days keeps constant memory).
export interface LatencySummary {
  count: number;
  sum: number;
  max: number;
  p50: number;
  p95: number;
  p99: number;
}

export class LatencyWindow {
  private samples: number[] = [];
  private next = 0;
  private count = 0;
  private sum = 0;
  private max = 0;

  constructor(private readonly capacity = 4096) {}

  record(ms: number): void {
    if (this.samples.length < this.capacity) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
    this.count += 1;
    this.sum += ms;
    this.max = Math.max(this.max, ms);
  }

  summary(): LatencySummary {
    const sorted = [...this.samples].sort((a, b) => a - b);
    const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : 0);
    return { count: this.count, sum: this.sum, max: this.max, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
  }
}
