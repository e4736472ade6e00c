/**
 * FlightFollowUp is what one run of a SingleFlight's work may hand back: a callback to call once the
 * flight is clear, so that whoever it tells may ask for the next run at once.
 */
export type FlightFollowUp = (() => void) | undefined;

/**
 * SingleFlight runs one piece of async work at a time. A request that arrives while the work runs is
 * remembered, not queued: the work runs exactly once more after the current run, however many
 * requests came meanwhile. A periodic tick that may simply be skipped uses `requestIfIdle`.
 *
 * The work reports its own failures; one that escapes goes to `onError` and the flight goes on.
 */
export class SingleFlight {
  private running: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly work: () => Promise<FlightFollowUp | undefined>,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** busy says whether a run is under way. */
  get busy(): boolean {
    return this.running !== null;
  }

  /** request runs the work now, or once more after the run under way. */
  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop();
  }

  /** requestIfIdle runs the work now unless a run is under way, and says whether it started one. */
  requestIfIdle(): boolean {
    if (this.running) return false;
    this.running = this.loop();
    return true;
  }

  /** settled resolves once the run under way, and the one more it was asked for, are over. */
  settled(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async loop(): Promise<void> {
    for (;;) {
      this.again = false;
      let followUp: FlightFollowUp;
      try {
        followUp = await this.work();
      } catch (error) {
        this.onError(error);
      }
      if (!this.again) {
        // Clear before the follow-up, so that it may ask for the next run and get it.
        this.running = null;
        followUp?.();
        return;
      }
      followUp?.();
    }
  }
}
