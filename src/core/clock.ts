/** TimerHandle identifies a timer set on a Clock. */
export type TimerHandle = { readonly id: number };

/**
 * Clock is the only source of time in jobchart. Every timestamp written to SQL comes from `now()`,
 * and every delay (polls, backoff, timeouts) is a timer set on it, so a SimulatedClock drives them all.
 */
export interface Clock {
  /** now returns the current time. */
  now(): Date;
  /** setTimeout calls `fn` once after `ms` milliseconds of this clock's time. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** clearTimeout cancels a timer; clearing one that already fired does nothing. */
  clearTimeout(handle: TimerHandle): void;
}

/** SystemClock is wall-clock time with Node's timers; timers do not keep the process alive. */
export class SystemClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextId = 1;

  now(): Date {
    return new Date();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    const timer = setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    timer.unref();
    this.timers.set(id, timer);
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    const timer = this.timers.get(handle.id);
    if (timer) clearTimeout(timer);
    this.timers.delete(handle.id);
  }
}

interface PendingTimer {
  id: number;
  dueAt: number;
  fn: () => void;
}

/**
 * SimulatedClock is time that moves only when told to. `advance(ms)` fires, in due order, every timer
 * that falls due, so tests cover hours of backoff or cron in milliseconds without sleeping.
 */
export class SimulatedClock implements Clock {
  private current: number;
  private pending: PendingTimer[] = [];
  private nextId = 1;

  /** The clock starts at `start` (default 2030-01-01T00:00:00Z, so tests do not depend on today). */
  constructor(start: Date = new Date('2030-01-01T00:00:00Z')) {
    this.current = start.getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.pending.push({ id, dueAt: this.current + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.pending = this.pending.filter((timer) => timer.id !== handle.id);
  }

  /** advance moves time forward by `ms` and fires the timers that fall due on the way, earliest first. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const next = this.earliestDue(target);
      if (!next) break;
      this.pending = this.pending.filter((timer) => timer !== next);
      this.current = Math.max(this.current, next.dueAt);
      next.fn();
    }
    this.current = target;
  }

  /** timerCount is how many timers are waiting, for tests that check nothing is left behind. */
  get timerCount(): number {
    return this.pending.length;
  }

  private earliestDue(limit: number): PendingTimer | undefined {
    let earliest: PendingTimer | undefined;
    for (const timer of this.pending) {
      if (timer.dueAt <= limit && (!earliest || timer.dueAt < earliest.dueAt)) earliest = timer;
    }
    return earliest;
  }
}
