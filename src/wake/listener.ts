import type pg from 'pg';
import pgListen, { type Subscriber } from 'pg-listen';
import type { Logger } from '../core/logger.js';

/** ListenerHooks are what the listener tells its owner. */
export interface ListenerHooks {
  /** onNotify runs for every notification on the channel, with its payload ('' when none). */
  onNotify(payload: string): void;
  /** onConnected runs after every (re)connect: the owner must poll, as notifications sent meanwhile are lost. */
  onConnected(): void;
  /** onDisconnected runs when the connection is lost and reconnecting starts. */
  onDisconnected(error: unknown): void;
}

// createSubscriber: pg-listen is CommonJS, so its default export sits on `.default` when imported from ESM.
const createSubscriber = pgListen.default;

// RECONNECT_MAX_MS caps the reconnect backoff. Reconnect delays use wall-clock time on purpose: they
// pace a real network, not a job, so a simulated clock must not freeze them.
const RECONNECT_MAX_MS = 10_000;

function reconnectDelay(attempt: number): number {
  return Math.min(250 * 2 ** Math.min(attempt, 10), RECONNECT_MAX_MS);
}

/**
 * Listener keeps one dedicated LISTEN connection on a channel for as long as it runs. pg-listen gives
 * up on a reconnect that fails part-way, so on any give-up the listener builds a fresh subscriber.
 */
export class Listener {
  private subscriber: Subscriber | null = null;
  private running = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private connectedNow = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly hooks: ListenerHooks,
    private readonly logger: Logger,
  ) {}

  /** connected says whether the LISTEN connection is up right now. */
  get connected(): boolean {
    return this.connectedNow;
  }

  /** start connects; it resolves after the first attempt, whether or not it succeeded (it keeps trying). */
  async start(): Promise<void> {
    this.running = true;
    await this.open();
  }

  /** stop closes the connection and cancels any pending reconnect. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.close();
  }

  private async open(): Promise<void> {
    // retryLimit 1: pg-listen makes no reconnection attempt of its own and reports a lost
    // connection as an error, so that every reconnect goes through giveUp, whose timer stop()
    // cancels. pg-listen's own reconnect loop ignores close(): a subscriber given up while it
    // was reconnecting kept trying (a connection leak while the server was up, and a process that
    // never exited once it was gone).
    const subscriber = createSubscriber(this.config, {
      retryLimit: 1,
      paranoidChecking: 10_000,
      parse: (text: string) => text,
      serialize: (payload: unknown) => String(payload),
    });
    this.subscriber = subscriber;
    // parse: identity, because payloads here are plain text (pg-listen would JSON-parse them).
    subscriber.notifications.on(this.channel, (payload: unknown) =>
      this.hooks.onNotify(typeof payload === 'string' ? payload : ''),
    );
    // pg-listen's own 'connected' event is not used: on the first connect it comes before LISTEN is
    // issued, and a wake-up then could miss a job inserted before LISTEN took effect. The runtime
    // counts as connected once listenTo has returned, below.
    subscriber.events.on('error', (error: Error) => this.giveUp(subscriber, error));
    try {
      await subscriber.connect();
      await subscriber.listenTo(this.channel);
      this.markConnected();
    } catch (error) {
      this.giveUp(subscriber, error);
    }
  }

  private markConnected(): void {
    this.attempt = 0;
    if (!this.connectedNow) this.logger.debug({ channel: this.channel }, 'listener connected');
    this.connectedNow = true;
    this.hooks.onConnected();
  }

  private markDisconnected(reason: unknown): void {
    if (this.connectedNow) this.hooks.onDisconnected(reason);
    this.connectedNow = false;
  }

  // giveUp discards a subscriber that failed and schedules a fresh one with backoff.
  private giveUp(subscriber: Subscriber, error: unknown): void {
    if (this.subscriber !== subscriber) return;
    this.markDisconnected(error);
    this.logger.warn({ err: error, attempt: this.attempt }, 'listener connection failed; reconnecting');
    this.subscriber = null;
    subscriber.close().catch(() => undefined);
    if (!this.running) return;
    const delay = reconnectDelay(this.attempt++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.running) void this.open();
    }, delay);
    this.retryTimer.unref();
  }

  private async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = null;
    this.connectedNow = false;
    if (!subscriber) return;
    subscriber.events.on('error', () => undefined);
    await subscriber.close().catch(() => undefined);
  }
}
