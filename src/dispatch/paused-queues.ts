/**
 * PausedQueues is this runtime's view of which queues are paused, which its claims leave out. It is
 * read from the database at start, on every poll and after the LISTEN connection (re)connects, and
 * changed at once by a pause or resume notification (or this runtime's own call), so that a lost
 * notification costs at most one poll interval.
 *
 * A read that was under way when a notification arrived is dropped rather than applied: it may have
 * been taken before the change the notification announced, and the next poll reads again.
 */
export class PausedQueues {
  private names = new Set<string>();
  /** changes counts the changes a notification or a call made, to tell a read that raced one. */
  private changes = 0;
  private skip: string[] = [];
  private reading: Promise<void> | null = null;

  /**
   * `read` reads the paused names from the database; `limitedQueues` are the queues claimed through
   * their own path, always left out of the claim from every other queue.
   */
  constructor(
    private readonly read: () => Promise<string[]>,
    private readonly limitedQueues: readonly string[],
  ) {
    this.skip = [...limitedQueues];
  }

  /** has says whether `queue` is paused as far as this runtime knows. */
  has(queue: string): boolean {
    return this.names.has(queue);
  }

  /** size is how many queues are paused as far as this runtime knows. */
  get size(): number {
    return this.names.size;
  }

  /**
   * skipQueues are the queues the claim from every other queue leaves out: those with a limit of
   * their own (claimed apart) and the paused ones. Rebuilt only when the paused set changes.
   */
  get skipQueues(): readonly string[] {
    return this.skip;
  }

  /** apply records a pause or a resume this runtime heard of (or made); it says whether anything changed. */
  apply(queue: string, paused: boolean): boolean {
    this.changes++;
    if (this.names.has(queue) === paused) return false;
    if (paused) this.names.add(queue);
    else this.names.delete(queue);
    this.rebuild();
    return true;
  }

  /**
   * refresh reads the paused set from the database. Reads do not pile up: a refresh asked for while
   * one is under way (a simulated clock advanced by many polls) shares it.
   */
  refresh(): Promise<void> {
    this.reading ??= this.readOnce().finally(() => {
      this.reading = null;
    });
    return this.reading;
  }

  private async readOnce(): Promise<void> {
    const changes = this.changes;
    const names = new Set(await this.read());
    if (this.changes !== changes) return;
    const same = names.size === this.names.size && [...names].every((name) => this.names.has(name));
    this.names = names;
    if (!same) this.rebuild();
  }

  private rebuild(): void {
    const limited = new Set(this.limitedQueues);
    this.skip = [...this.limitedQueues, ...[...this.names].filter((name) => !limited.has(name))];
  }
}
