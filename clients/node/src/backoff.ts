// Exponential backoff with jitter, as base/backoff.hpp: each delay is drawn from [d/2, d], d doubling from
// `initialMs` up to `maxMs`, so clients retrying a restarted worker do not stampede it in step.
export class Backoff {
  private bound: number;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {
    this.bound = initialMs;
  }

  next(): number {
    const d = this.bound;
    this.bound = Math.min(this.maxMs, this.bound * 2);
    return d / 2 + Math.random() * (d / 2);
  }

  reset(): void {
    this.bound = this.initialMs;
  }
}
