import type { Clock, TimerHandle } from '../core/clock.js';
import { ValidationError } from '../core/errors.js';
import { SingleFlight } from '../core/single-flight.js';

/**
 * MaintenanceService is one periodic job of a runtime's upkeep (heartbeat, sweep, schedule pass):
 * `runOnce(now)` does one round at `now` and returns what it did, so that a test can call it directly
 * and a runtime can report it.
 */
export interface MaintenanceService<Counts> {
  /** name says which service this is, in errors and logs. */
  readonly name: string;
  /** runOnce does one round at `now` and returns its counts. */
  runOnce(now: Date): Promise<Counts>;
}

/** PeriodicConfig is how a periodic service is run. */
export interface PeriodicConfig {
  /** intervalMs is the time between the starts of two rounds, on the runtime's clock. */
  intervalMs: number;
  /** runAtStart runs a first round as soon as the service starts, rather than one interval later. */
  runAtStart: boolean;
  /**
   * whenBusy is what a tick does that finds a round under way: `skip` its turn (a heartbeat, whose
   * next tick comes soon enough), or ask for `once-more` right after it (a pass that would otherwise
   * leave what fell due meanwhile waiting a whole interval).
   */
  whenBusy: 'skip' | 'once-more';
  /**
   * onDemand arms a round only when `due()` asks for one (and none is armed), instead of one every
   * interval: a service that often has nothing to do then leaves no timer while it has none.
   */
  onDemand?: boolean;
}

/** PeriodicHooks are what a periodic service tells whoever runs it. */
export interface PeriodicHooks<Counts> {
  /** onRun hears of each round that completed, once the service is free to run the next. */
  onRun?(counts: Counts, at: Date): void;
  /** onError hears of a round that failed; the next round tries again. */
  onError(error: unknown): void;
}

/**
 * periodicConfig checks a service's configuration against its defaults: `intervalMs` must be a
 * positive whole number of milliseconds a timer can hold.
 */
export function periodicConfig(name: string, given: Partial<PeriodicConfig>, defaults: PeriodicConfig) {
  const config = { ...defaults, ...given };
  const { intervalMs } = config;
  if (!Number.isInteger(intervalMs) || intervalMs <= 0 || intervalMs > 2 ** 31 - 1)
    throw new ValidationError(
      `${name}.intervalMs`,
      `a whole number of milliseconds from 1 to ${2 ** 31 - 1}`,
      intervalMs,
    );
  return config;
}

/**
 * Periodic runs a MaintenanceService every `intervalMs` of its clock, one round at a time. Each tick
 * arms the next before it runs, so rounds keep their cadence however long one takes; a tick that
 * finds a round still under way skips its turn or asks for one more (see PeriodicConfig.whenBusy).
 * `trigger()` asks for a round now, or once more after the one under way.
 */
export class Periodic<Counts> {
  private timer: TimerHandle | null = null;
  private active = false;
  private readonly flight: SingleFlight;

  constructor(
    private readonly service: MaintenanceService<Counts>,
    private readonly clock: Clock,
    private readonly config: PeriodicConfig,
    private readonly hooks: PeriodicHooks<Counts>,
  ) {
    this.flight = new SingleFlight(() => this.round(), hooks.onError);
  }

  /** running says whether the service has been started and not stopped. */
  get running(): boolean {
    return this.active;
  }

  /** start begins the rounds. */
  start(): void {
    if (this.active) return;
    this.active = true;
    if (!this.config.onDemand) this.arm();
    if (this.config.runAtStart) this.flight.request();
  }

  /** due arms a round `intervalMs` from now unless one is armed (for an `onDemand` service); ignored once stopped. */
  due(): void {
    if (this.active && this.timer === null) this.arm();
  }

  /** trigger asks for a round now, or once more after the one under way; ignored once stopped. */
  trigger(): void {
    if (this.active) this.flight.request();
  }

  /** halt stops the rounds without waiting for one under way. */
  halt(): void {
    this.active = false;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** stop stops the rounds and waits for one under way. */
  async stop(): Promise<void> {
    this.halt();
    await this.flight.settled();
  }

  private arm(): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      if (!this.active) return;
      if (!this.config.onDemand) this.arm();
      if (this.config.whenBusy === 'once-more') this.flight.request();
      else this.flight.requestIfIdle();
    }, this.config.intervalMs);
  }

  private async round(): Promise<(() => void) | undefined> {
    const at = this.clock.now();
    try {
      const counts = await this.service.runOnce(at);
      const { onRun } = this.hooks;
      return onRun ? () => onRun(counts, at) : undefined;
    } catch (error) {
      this.hooks.onError(error);
      return undefined;
    }
  }
}
