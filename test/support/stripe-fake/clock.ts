// Fake time in Unix seconds. Frozen by default, like a Stripe test clock, so that a test decides exactly
// when a period ends; 'running' mode follows the wall clock from the start time (plus any advances).

export type ClockMode = 'frozen' | 'running';

export class FakeClock {
  private base: number;
  private wallBase = Date.now();
  private offset = 0;

  constructor(
    start: number,
    readonly mode: ClockMode = 'frozen',
  ) {
    this.base = Math.floor(start);
  }

  now(): number {
    const running = this.mode === 'running' ? Math.floor((Date.now() - this.wallBase) / 1000) : 0;
    return this.base + this.offset + running;
  }

  /** Moves time forward only: Stripe's clocks never go back, and neither may period or invoice state. */
  setTo(t: number): void {
    const now = this.now();
    if (t > now) this.offset += Math.floor(t) - now;
  }
}

export const MINUTE = 60;
export const HOUR = 3600;
export const DAY = 86_400;

/** `anchor` plus `n` whole intervals in UTC; months keep the anchor's day, clamped to the month's end. */
export function addInterval(anchor: number, interval: 'day' | 'week' | 'month' | 'year', n: number): number {
  if (interval === 'day') return anchor + n * DAY;
  if (interval === 'week') return anchor + n * 7 * DAY;
  const d = new Date(anchor * 1000);
  const months = interval === 'month' ? n : n * 12;
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + months;
  const targetYear = y + Math.floor(m / 12);
  const targetMonth = ((m % 12) + 12) % 12;
  const lastDay = new Date(Date.UTC(targetYear, targetMonth + 1, 0)).getUTCDate();
  const day = Math.min(d.getUTCDate(), lastDay);
  return Date.UTC(targetYear, targetMonth, day, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()) / 1000;
}
